// A transformer + MaxEnt (softmax) teacher: e.g. the multilingual UPOS teacher of Case 3.
(import 'transformer_tagger_base.libsonnet')('maxent')

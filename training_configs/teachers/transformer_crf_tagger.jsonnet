// A transformer + CRF teacher (multilingual: all languages of TAGGING_TRAIN).
(import 'transformer_tagger_base.libsonnet')('crf')

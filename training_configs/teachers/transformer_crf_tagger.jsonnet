// A transformer + CRF teacher (multilingual: all languages of NER_TRAIN).
(import 'transformer_tagger_base.libsonnet')('crf')

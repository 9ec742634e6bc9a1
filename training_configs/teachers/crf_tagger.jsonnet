// One multilingual BiLSTM-CRF teacher over all languages of NER_TRAIN.
local c = import '../common.libsonnet';
(import 'crf_tagger_base.libsonnet')(c.env('NER_TRAIN'), c.env('NER_DEV'))

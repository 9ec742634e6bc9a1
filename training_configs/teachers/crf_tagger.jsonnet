// One multilingual BiLSTM-CRF teacher over all languages of TAGGING_TRAIN.
local c = import '../common.libsonnet';
(import 'crf_tagger_base.libsonnet')(c.env('TAGGING_TRAIN'), c.env('TAGGING_DEV'))

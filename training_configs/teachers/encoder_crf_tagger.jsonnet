// One multilingual teacher over all languages of TAGGING_TRAIN: a frozen encoder's cached features + BiLSTM-CRF (encoder_tagger_base.libsonnet).
local c = import '../common.libsonnet';
(import 'encoder_tagger_base.libsonnet')(c.env('TAGGING_TRAIN'), c.env('TAGGING_DEV'), null, 'crf')

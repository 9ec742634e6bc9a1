// The Dutch teacher (one per language): a frozen encoder's cached features + BiLSTM-CRF (encoder_tagger_base.libsonnet).
local c = import '../common.libsonnet';
(import 'encoder_tagger_base.libsonnet')(c.env('TAGGING_TRAIN_NL'), c.env('TAGGING_DEV_NL'), 'nl', 'crf')

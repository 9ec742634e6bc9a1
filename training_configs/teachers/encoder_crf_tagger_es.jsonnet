// The Spanish teacher (one per language): a frozen encoder's cached features + BiLSTM-CRF (encoder_tagger_base.libsonnet).
local c = import '../common.libsonnet';
(import 'encoder_tagger_base.libsonnet')(c.env('TAGGING_TRAIN_ES'), c.env('TAGGING_DEV_ES'), 'es', 'crf')

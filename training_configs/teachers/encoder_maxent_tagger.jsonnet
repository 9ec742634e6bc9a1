// One multilingual MaxEnt teacher: a frozen encoder's cached features + BiLSTM-MaxEnt (encoder_tagger_base.libsonnet).
local c = import '../common.libsonnet';
(import 'encoder_tagger_base.libsonnet')(c.env('TAGGING_TRAIN'), c.env('TAGGING_DEV'), null, 'maxent')

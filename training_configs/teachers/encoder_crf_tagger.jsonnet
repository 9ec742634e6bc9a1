// One multilingual teacher over all languages of NER_TRAIN: a frozen encoder's cached features + BiLSTM-CRF (encoder_tagger_base.libsonnet).
local c = import '../common.libsonnet';
(import 'encoder_tagger_base.libsonnet')(c.env('NER_TRAIN'), c.env('NER_DEV'), null, 'crf')

// The Dutch teacher of the multilingual setting (one teacher per language, Wang et al. 2020).
local c = import '../common.libsonnet';
(import 'crf_tagger_base.libsonnet')(c.env('TAGGING_TRAIN_NL'), c.env('TAGGING_DEV_NL'), 'nl')

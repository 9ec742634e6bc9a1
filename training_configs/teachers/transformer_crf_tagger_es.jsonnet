// The Spanish fine-tuned transformer + CRF teacher (one per language, as the papers' teachers are):
// TRANSFORMER_MODEL fine-tuned on TAGGING_TRAIN_ES alone (transformer_tagger_base.libsonnet).
local c = import '../common.libsonnet';
(import 'transformer_tagger_base.libsonnet')('crf', c.env('TAGGING_TRAIN_ES'), c.env('TAGGING_DEV_ES'))

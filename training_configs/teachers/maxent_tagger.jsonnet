// A MaxEnt (softmax) BiLSTM teacher: the teacher of Case 3 (MaxEnt -> CRF).
local c = import '../common.libsonnet';
(import 'crf_tagger_base.libsonnet')(c.env('TAGGING_TRAIN'), c.env('TAGGING_DEV')) + {
  model+: { type: 'structkd_maxent_tagger' },
}

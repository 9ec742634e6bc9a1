// Baseline of Case 3: a CRF student trained on unlabeled text only, with the MaxEnt teacher's
// best labels as pseudo gold (Top-1).
local c = import 'common.libsonnet';
(import 'struct_kd_case3.jsonnet') + {
  dataset_reader+: { objective: { type: 'top1' } },
  model+: { kd_loss: { type: 'top1' } },
}

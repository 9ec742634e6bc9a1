// XtremeDistil D1: joint training on gold labels and the teacher's logits.
(import 'xtremedistil.libsonnet')(representation_weight=0.0)

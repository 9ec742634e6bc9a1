// XtremeDistil D2: joint training on gold labels, logits and the teacher's hidden representations.
(import 'xtremedistil.libsonnet')(representation_weight=1.0)

// XtremeDistil D4.1: representation, then logits, then labels.
(import 'xtremedistil.libsonnet')(representation_weight=1.0, stages=[{ epochs: 2, representation_weight: 1.0, logit_weight: 0.0, kd_weight: 1.0 }, { epochs: 2, representation_weight: 0.0, logit_weight: 1.0, kd_weight: 1.0 }, { epochs: 2, representation_weight: 0.0, logit_weight: 0.0, kd_weight: 0.0 }], gradual_unfreezing=false)

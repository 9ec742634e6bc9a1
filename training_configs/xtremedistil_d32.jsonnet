// XtremeDistil D3.2: D3.1 with gradual unfreezing from the top in each stage.
(import 'xtremedistil.libsonnet')(representation_weight=1.0, stages=[{ epochs: 2, representation_weight: 1.0, logit_weight: 0.0, kd_weight: 1.0 }, { epochs: 3, representation_weight: 0.0, logit_weight: 1.0, kd_weight: 0.5 }], gradual_unfreezing=true)

// XtremeDistil D3.2: D3.1 with gradual unfreezing from the top in each stage.
(import 'xtremedistil.libsonnet')(representation_weight=1.0, stages=[{ share: 1 / 3, representation_weight: 1.0, logit_weight: 0.0, kd_weight: 1.0 }, { share: 2 / 3, representation_weight: 0.0, logit_weight: 1.0, kd_weight: 0.5 }], gradual_unfreezing=true)

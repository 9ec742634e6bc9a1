// Pos.+Top-WK (Wang et al. 2020): the average of Posterior and Weighted Top-K KD.
(import 'student.libsonnet')(decoder='crf', objective={ type: 'posterior+top_wk', k: 5 }, kd_weight=1.0, anneal_rate=0.2)

// Weighted Top-K KD (Wang et al. 2020, Eq. 9) from the teachers' exact k-best (k = 5).
(import 'student.libsonnet')(decoder='crf', objective={ type: 'top_wk', k: 5 }, kd_weight=1.0, anneal_rate=0.2)

// Top-K KD (Wang et al. 2020, Eq. 8) from the teachers' exact k-best (k = 5).
(import 'student.libsonnet')(decoder='crf', objective={ type: 'top_k', k: 5 }, kd_weight=1.0, anneal_rate=0.2)

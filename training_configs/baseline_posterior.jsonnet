// Posterior KD (Wang et al. 2020, Eq. 13): the student's token marginals against the teachers'.
(import 'student.libsonnet')(decoder='crf', objective={ type: 'posterior' }, kd_weight=1.0, anneal_rate=0.2)

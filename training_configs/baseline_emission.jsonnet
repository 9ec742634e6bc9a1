// Emission KD (Wang et al. 2020, Eq. 5): the CRF student's emission softmax against the teachers'.
(import 'student.libsonnet')(decoder='crf', objective={ type: 'emission' }, kd_weight=1.0, anneal_rate=0.2)

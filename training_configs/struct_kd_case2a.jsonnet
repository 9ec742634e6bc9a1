// Structural KD, Case 2a: CRF teachers -> MaxEnt student, with the teachers' unary marginals (Eq. 7).
(import 'student.libsonnet')(decoder='maxent', objective={ type: 'structural' }, kd_weight=1.0, anneal_rate=0.2)

// Structural KD, Case 1a (Wang et al. 2021): CRF teachers (one per language) -> one CRF student,
// L = -sum_u P_t(u|x) Score_s(u,x) + log Z_s(x) over labels and adjacent label pairs.
// Teacher annealing as in Algorithm 1 of Wang et al. 2020: lambda from 1 down by 0.2 an epoch.
(import 'student.libsonnet')(decoder='crf', objective={ type: 'structural', temperature: 1.0 }, kd_weight=1.0, anneal_rate=0.2)

// Structural KD, Case 4 (Wang et al. 2021): a NER-as-parsing teacher -> a MaxEnt BIOES student,
// the teacher's BIOES marginals computed by the span dynamic program (span_dp.bioes_marginals).
local c = import 'common.libsonnet';
(import 'student.libsonnet')(decoder='maxent', objective={ type: 'structural' },
                             teachers={ xx: c.env('SPAN_TEACHER') }, kd_weight=1.0, anneal_rate=0.2) + {
  dataset_reader+: { default_teacher: 'xx' },
}

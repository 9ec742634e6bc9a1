// Token KD (Wang et al. 2020, Eq. 4), MaxEnt -> MaxEnt.
local c = import 'common.libsonnet';
(import 'student.libsonnet')(decoder='maxent', objective={ type: 'token' }, teachers={ xx: c.env('MAXENT_TEACHER') }, kd_weight=1.0, anneal_rate=0.2) + {
  dataset_reader+: { default_teacher: 'xx' },
}

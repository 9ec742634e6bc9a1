// Structural KD, Case 3 (zero-shot): a MaxEnt teacher -> a CRF student trained on unlabeled text
// only, the teacher's pair marginals taken as products of its unaries (Eq. 8).
local c = import 'common.libsonnet';
(import 'student.libsonnet')(
  decoder='crf',
  objective={ type: 'structural' },
  teachers={ xx: c.env('MAXENT_TEACHER') },
  train=std.manifestJsonMinified({ unlabeled: c.path_value(c.env('TAGGING_UNLABELED')) }),
) + {
  dataset_reader+: { default_teacher: 'xx' },
}

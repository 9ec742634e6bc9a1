// Top-1 pseudo labels: gold sentences plus unlabeled sentences labeled by the teachers' Viterbi.
local c = import 'common.libsonnet';
(import 'student.libsonnet')(
  decoder='crf',
  objective={ type: 'top1' },
  kd_weight=0.0,  // labeled sentences: gold only; unlabeled ones always train on the KD loss
  train=std.manifestJsonMinified({
    labeled: c.path_value(c.env('TAGGING_TRAIN')),
    unlabeled: c.path_value(c.env('TAGGING_UNLABELED')),
  }),
)

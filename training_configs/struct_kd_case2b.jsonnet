// Structural KD, Case 2b: a second-order (MFVI) parser teacher -> a sequence-labeling parser, the
// teacher's head distributions being its mean-field arc posteriors.
local c = import 'common.libsonnet';
(import 'seq_label_parser.libsonnet')(c.env('SECOND_ORDER_TEACHER'))

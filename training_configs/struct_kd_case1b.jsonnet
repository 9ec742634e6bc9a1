// Structural KD, Case 1b (Wang et al. 2021): a biaffine parser teacher -> a sequence-labeling
// parser, P_t((h_i, l_i)) = P_t(h_i) P_t(l_i) mapped onto relative-PoS labels (Eq. 5-6).
local c = import 'common.libsonnet';
(import 'seq_label_parser.libsonnet')(c.env('BIAFFINE_TEACHER'))

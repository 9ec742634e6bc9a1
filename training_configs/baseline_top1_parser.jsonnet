// Baseline of Cases 1b/2b: Top-1 pseudo labels. The biaffine teacher's best trees (maximum spanning
// trees, best deprels) label the unlabeled sentences of PARSE_UNLABELED (words and PoS; heads ignored)
// and are the one-hot targets of the KD loss on every sentence; gold trees as usual on labeled ones.
local c = import 'common.libsonnet';
(import 'seq_label_parser.libsonnet')(c.env('BIAFFINE_TEACHER'), objective='top1', unlabeled=true)

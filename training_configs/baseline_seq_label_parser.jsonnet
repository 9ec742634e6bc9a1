// The sequence-labeling parser trained on gold trees only (w/o KD).
(import 'seq_label_parser.libsonnet')()

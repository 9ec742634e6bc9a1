// The biaffine dependency parser (Dozat & Manning 2017): the teacher of Case 1b.
(import '../parsing.libsonnet').graph_parser('structkd_biaffine_parser')

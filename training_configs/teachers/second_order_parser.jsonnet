// The second-order parser with mean-field inference (Wang & Tu 2020): the teacher of Case 2b.
(import '../parsing.libsonnet').graph_parser('structkd_second_order_parser', { second_order_dim: 100, iterations: 3 })

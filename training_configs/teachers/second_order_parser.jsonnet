// The second-order parser with mean-field inference (Wang & Tu 2020): the teacher of Case 2b.
// Its sibling and grandparent scores are (B, n, n, n): batches are capped at 1,000 words (about 32
// sentences of UD length, 4 of the 249-word PTB sentence), not at 32 sentences.
(import '../parsing.libsonnet').graph_parser(
  'structkd_second_order_parser', { second_order_dim: 100, iterations: 3 },
  data_loader={ type: 'structkd_data_loader', batch_sampler: { type: 'max_tokens_sampler', max_tokens: 1000, sorting_keys: ['tokens'] } },
)

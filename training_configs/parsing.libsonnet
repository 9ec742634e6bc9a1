// Shared pieces of the dependency-parsing configs. PARSE_FORMAT: 'conllu' (UD: heads and deprels,
// UAS and LAS) or 'ptb' (the .dp files: heads only, UAS). Data: PARSE_TRAIN, PARSE_DEV.
local c = import 'common.libsonnet';
{
  format:: c.env('PARSE_FORMAT'),
  reader(relpos=false):: {
    token_indexers: {
      tokens: { type: 'single_id', lowercase_tokens: true },
      token_characters: { type: 'structkd_characters', min_padding_length: 3 },
    },
  } + (if $.format == 'ptb' then { type: 'structkd_ptb_dependency', relpos_tags: relpos }
       else { type: 'structkd_conllu' } + (if relpos then { tag_column: 'relpos' } else {})),
  embedder:: c.word_char_embedder(100, 16, 64),
  small_embedder:: c.word_char_embedder(50, 8, 32),
  graph_parser(type, extra={}, data_loader=c.data_loader(32)):: c.run_settings(c.seed) + {
    dataset_reader: $.reader(),
    train_data_path: c.env('PARSE_TRAIN'),
    validation_data_path: c.env('PARSE_DEV'),
    model: {
      type: type,
      text_field_embedder: $.embedder,
      pos_tag_embedding: { embedding_dim: 50, vocab_namespace: 'pos' },
      encoder: { type: 'lstm', input_size: 100 + 64 + 50, hidden_size: 200, num_layers: 2, bidirectional: true, dropout: 0.2 },
      arc_representation_dim: 256,
      label_representation_dim: 100,
      dropout: 0.25,
    } + extra,
    data_loader: data_loader,
    trainer: c.trainer(c.teacher_epochs, 2e-3) + { validation_metric: if $.format == 'ptb' then '+UAS' else '+LAS' },
  },
}

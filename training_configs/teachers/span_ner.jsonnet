// NER as parsing (Yu et al. 2020): the teacher of Case 4.
local c = import '../common.libsonnet';
c.run_settings(c.seed) + {
  dataset_reader: c.ner_reader() + { span_labels: true },
  train_data_path: c.env('TAGGING_TRAIN'),
  validation_data_path: c.env('TAGGING_DEV'),
  model: {
    type: 'structkd_span_ner',
    dropout: 0.25,
    text_field_embedder: c.word_char_embedder(64, 16, 48),
    encoder: c.bilstm(64 + 48, 128),
    span_representation_dim: 128,
  },
  data_loader: c.data_loader(16),
  trainer: c.trainer(c.teacher_epochs, 0.003),
}

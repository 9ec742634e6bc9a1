// A BiLSTM-CRF teacher over words and characters (the stronger, slower model).
local c = import '../common.libsonnet';
function(train, dev, lang=null, word_dim=64, char_filters=48, hidden=128) c.run_settings(c.seed) + {
  dataset_reader: c.ner_reader(lang),
  train_data_path: train,
  validation_data_path: dev,
  model: {
    type: 'structkd_crf_tagger',
    label_encoding: c.label_encoding,
    dropout: 0.25,
    text_field_embedder: c.word_char_embedder(word_dim, 16, char_filters),
    encoder: c.bilstm(word_dim + char_filters, hidden),
  },
  data_loader: c.data_loader(16),
  trainer: c.trainer(c.teacher_epochs, 0.005),
}

// A strong teacher a CPU can afford: a frozen pretrained encoder (FROZEN_ENCODER, a local Hugging
// Face folder, e.g. multilingual-e5-small) whose word features, FROZEN_ENCODER_LAYERS of its layers
// (a JSON list; wordpieces averaged into words), are computed once per sentence and cached on disk
// (structkd_frozen_encoder); a learned mix of them and word + character embeddings feed a BiLSTM
// with a CRF or MaxEnt head. Only the mix and the head train.
local c = import '../common.libsonnet';
function(train, dev, lang=null, decoder='crf') c.run_settings(c.seed) + {
  local layers = std.parseJson(c.env('FROZEN_ENCODER_LAYERS')),
  local encoder_dim = std.parseInt(c.env('FROZEN_ENCODER_DIM')),
  local reader = c.ner_reader(lang),
  dataset_reader: reader + {
    token_indexers+: {
      encoder: {
        type: 'structkd_frozen_encoder',
        model_name: c.env('FROZEN_ENCODER'),
        layers: layers,
        [if c.env('FROZEN_ENCODER_CACHE') != '' then 'cache_directory']: c.env('FROZEN_ENCODER_CACHE'),
      },
    },
  },
  train_data_path: train,
  validation_data_path: dev,
  model: {
    type: if decoder == 'crf' then 'structkd_crf_tagger' else 'structkd_maxent_tagger',
    label_encoding: c.label_encoding,
    dropout: 0.25,
    text_field_embedder: {
      token_embedders: c.word_char_embedder(64, 16, 48).token_embedders + {
        encoder: { type: 'structkd_layer_mix', num_layers: std.length(layers), hidden_size: encoder_dim, dropout: 0.1 },
      },
    },
    encoder: c.bilstm(64 + 48 + encoder_dim, 128),
  },
  data_loader: c.data_loader(16),
  trainer: c.trainer(c.teacher_epochs, 0.005),
}

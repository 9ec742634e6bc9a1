// KR2 (Fan et al.): a BiLSTM UPOS tagger (the KReader: words + characters) with a frozen pretrained
// transformer (the KResource, TRANSFORMER_MODEL) fused by KR2_FUSION (scalar_mix, average,
// last_four or layer) and concatenated to its input. KR2_FUSION=none trains the KReader alone.
local c = import 'common.libsonnet';
local fusion = c.env('KR2_FUSION');
local kr = fusion != 'none';
local projection = 64;
c.run_settings(c.seed) + {
  dataset_reader: {
    type: 'structkd_conllu',
    read_heads: false,
    tag_column: 'upos',
    token_indexers: {
      tokens: { type: 'single_id' },
      token_characters: { type: 'structkd_characters', min_padding_length: 3 },
    } + (if kr then { kresource: { type: 'pretrained_transformer_mismatched', model_name: c.env('TRANSFORMER_MODEL') } } else {}),
  },
  train_data_path: c.env('UD_TRAIN'),
  validation_data_path: c.env('UD_DEV'),
  model: {
    type: 'structkd_maxent_tagger',
    dropout: 0.25,
    text_field_embedder: {
      token_embedders: c.word_char_embedder(64, 16, 48).token_embedders + (if kr then {
        kresource: { type: 'structkd_kr2', model_name: c.env('TRANSFORMER_MODEL'), fusion: fusion, projection_dim: projection },
      } else {}),
    },
    encoder: c.bilstm(64 + 48 + (if kr then projection else 0), 128),
  },
  data_loader: c.data_loader(32),
  trainer: c.trainer(c.epochs, 0.003) + { validation_metric: '+accuracy' },
}

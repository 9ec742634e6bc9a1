// A fine-tuned transformer teacher (any Hugging Face encoder folder in TRANSFORMER_MODEL, e.g.
// multilingual-e5-small built by ../shared/tools/multilingual_encoder/build.sh), word-level through
// pretrained_transformer_mismatched (a word is the average of its wordpieces), with a CRF or
// MaxEnt decoder. KD then works on words, whatever the student's tokenization.
local c = import '../common.libsonnet';
local model_name = c.env('TRANSFORMER_MODEL');
function(decoder='crf', train=c.env('NER_TRAIN'), dev=c.env('NER_DEV')) c.random_seeds(c.seed) + {
  dataset_reader: c.ner_reader() + {
    token_indexers: { tokens: { type: 'pretrained_transformer_mismatched', model_name: model_name, max_length: 512 } },
  },
  train_data_path: train,
  validation_data_path: dev,
  model: {
    type: if decoder == 'crf' then 'structkd_crf_tagger' else 'structkd_maxent_tagger',
    label_encoding: c.label_encoding,
    dropout: 0.1,
    text_field_embedder: { token_embedders: { tokens: {
      type: 'pretrained_transformer_mismatched', model_name: model_name, max_length: 512,
    } } },
  },
  data_loader: c.data_loader(16),
  trainer: c.trainer(c.teacher_epochs, 5e-5) + {
    optimizer: { type: 'huggingface_adamw', lr: 5e-5, weight_decay: 0.01,
                 parameter_groups: [[['tag_projection', 'transitions'], { lr: 1e-3 }]] },
  },
}

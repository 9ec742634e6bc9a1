// A fine-tuned transformer teacher (any Hugging Face encoder folder in TRANSFORMER_MODEL, e.g.
// multilingual-e5-small built by ../shared/tools/multilingual_encoder/build.sh), word-level through
// structkd_transformer_words (allennlp's mismatched embedder: a word is the average of its
// wordpieces, or its first with TRANSFORMER_POOLING=first), with a CRF or MaxEnt decoder. KD then
// works on words, whatever the student's tokenization. TEACHER_LAYER picks the layer whose word
// states representation KD (XtremeDistil D2-D4) distils; empty: the last.
local c = import '../common.libsonnet';
local model_name = c.env('TRANSFORMER_MODEL');
function(decoder='crf', train=c.env('TAGGING_TRAIN'), dev=c.env('TAGGING_DEV')) c.run_settings(c.seed) + {
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
      type: 'structkd_transformer_words', model_name: model_name, max_length: 512,
      sub_token_mode: c.env('TRANSFORMER_POOLING'),
    } + (if c.env('TEACHER_LAYER') == '' then {} else { representation_layer: c.int_env('TEACHER_LAYER') }) } },
  },
  // batches of at most 500 words (about 16 sentences of 30): CoNLL-2002 has "sentences" of 800+
  // words, and 16 of those at once need over 12 GB of activations
  data_loader: { type: 'structkd_data_loader', batch_sampler: { type: 'max_tokens_sampler', max_tokens: 500, sorting_keys: ['tokens'] } },
  trainer: c.trainer(c.teacher_epochs, 5e-5) + {
    optimizer: { type: 'huggingface_adamw', lr: 5e-5, weight_decay: 0.01,
                 parameter_groups: [[['tag_projection', 'transitions'], { lr: 1e-3 }]] },
  },
}

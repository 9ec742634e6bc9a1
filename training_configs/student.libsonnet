// The papers' student: small word + character embeddings, a small BiLSTM, and a CRF or MaxEnt
// decoder, distilled from the per-language teachers by the objective given.
local c = import 'common.libsonnet';
function(decoder='crf', objective=null, teachers=null, kd_weight=1.0, anneal_rate=0.0, train=c.env('TAGGING_TRAIN'))
  c.random_seeds(c.seed) + {
    local base_reader = c.ner_reader(),
    dataset_reader: if objective == null then base_reader else {
      type: 'structkd_teacher',
      cuda_device: c.cuda_device,
      base_reader: base_reader,
      teachers: if teachers == null then { es: c.env('TEACHER_ES'), nl: c.env('TEACHER_NL') } else teachers,
      objective: objective,
      cache_directory: c.cache_directory,
    },
    validation_dataset_reader: base_reader,
    train_data_path: train,
    validation_data_path: c.env('TAGGING_DEV'),
    model: {
      type: if decoder == 'crf' then 'structkd_crf_tagger' else 'structkd_maxent_tagger',
      label_encoding: c.label_encoding,
      dropout: 0.1,
      text_field_embedder: c.word_char_embedder(32, 8, 16),
      encoder: c.bilstm(32 + 16, 32),
      [if objective != null then 'kd_loss']: objective,
      [if objective != null then 'kd_weight']: kd_weight,
    },
    data_loader: c.data_loader(16),
    trainer: c.trainer(c.epochs, 0.01, if objective == null then [] else [
      { type: 'teacher_annealing', initial_weight: kd_weight, anneal_rate: anneal_rate },
    ], student=true),
  }

// The papers' student: small word + character embeddings, a small BiLSTM, and a CRF or MaxEnt
// decoder, distilled from the per-language teachers by the objective given.
// STUDENT_INPUT=pieces: a student that starts from its teacher encoder's knowledge instead: each word
// is the average of its word pieces under STUDENT_ENCODER's tokenizer, their vectors that encoder's
// input embeddings compressed by SVD to STUDENT_PIECE_DIM (only the pieces of the text the student
// reads: training, transfer and dev), with the same character features.
local c = import 'common.libsonnet';
local input = c.env('STUDENT_INPUT');
local hidden = c.int_env('STUDENT_HIDDEN_DIM');
local pieces = {
  indexer: { type: 'structkd_wordpieces', model_name: c.env('STUDENT_ENCODER') },
  embedder: {
    type: 'structkd_compressed_wordpieces',
    pretrained_file: c.env('STUDENT_ENCODER'),
    embedding_dim: c.int_env('STUDENT_PIECE_DIM'),
  },
};
local words_dim = if input == 'words' then 32
                  else if input == 'pieces' then c.int_env('STUDENT_PIECE_DIM')
                  else error 'STUDENT_INPUT must be "words" or "pieces", got "' + input + '"';
function(decoder='crf', objective=null, teachers=null, kd_weight=1.0, anneal_rate=0.0, train=c.env('TAGGING_TRAIN'))
  c.run_settings(c.seed) + {
    // a teacher given as a training config is trained once, before the student's data is read
    [if objective != null then 'type']: 'structkd_teachers_first',
    local words_reader = c.ner_reader(),
    local base_reader = if input == 'words' then words_reader else words_reader + {
      token_indexers: { pieces: pieces.indexer, token_characters: words_reader.token_indexers.token_characters },
    },
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
      local words_chars = c.word_char_embedder(32, 8, 16),
      text_field_embedder: if input == 'words' then words_chars else {
        token_embedders: { pieces: pieces.embedder, token_characters: words_chars.token_embedders.token_characters },
      },
      encoder: c.bilstm(words_dim + 16, hidden),
      [if objective != null then 'kd_loss']: objective,
      [if objective != null then 'kd_weight']: kd_weight,
    },
    data_loader: c.data_loader(16),
    trainer: c.trainer(c.epochs, 0.01, if objective == null then [] else [
      { type: 'structkd_teacher_annealing', initial_weight: kd_weight, anneal_rate: anneal_rate },
    ], student=true),
  }

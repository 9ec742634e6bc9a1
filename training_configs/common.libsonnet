// Shared pieces of the project's configs. Data paths and sizes come from environment variables
// (std.extVar), whose defaults (sample_data/, beside these configs) the `allennlp` command line applies:
// see allennlp_structkd/config_defaults.py. Override any of them, or use `allennlp train -o`.
local env(name) = std.extVar(name);
local int_env(name) = std.parseInt(env(name));
{
  env:: env,
  // a data path variable's value: a JSON {lang: path} object, or a plain path
  path_value(s):: if std.startsWith(s, '{') then std.parseJson(s) else s,
  int_env:: int_env,
  seed:: int_env('STRUCTKD_SEED'),
  epochs:: int_env('STRUCTKD_EPOCHS'),
  teacher_epochs:: int_env('STRUCTKD_TEACHER_EPOCHS'),
  cache_directory:: if env('STRUCTKD_CACHE') == '' then null else env('STRUCTKD_CACHE'),
  // STRUCTKD_CUDA_DEVICE: -1 for the CPU, a GPU index, or empty (the default): the first GPU when
  // torch sees one, else the CPU (AllenNLP's choice for a null cuda_device). It drives training
  // and the teacher reader's annotation alike.
  cuda_device:: if env('STRUCTKD_CUDA_DEVICE') == '' then null else int_env('STRUCTKD_CUDA_DEVICE'),

  // What the taggers read, chosen by STRUCTKD_TASK: 'ner' (CoNLL column files, read as BIOES, the
  // label set of the papers' students; span F1) or 'upos' (CoNLL-U, UPOS tags; accuracy).
  task:: env('STRUCTKD_TASK'),
  label_encoding:: if $.task == 'ner' then 'BIOES' else null,
  validation_metric:: if $.task == 'ner' then '+f1-measure-overall' else '+accuracy',
  ner_reader(lang=null):: {
    // STRUCTKD_STRICT=false skips bad sentences (with a warning and a count) instead of stopping
    strict: env('STRUCTKD_STRICT') == 'true',
    token_indexers: {
      tokens: { type: 'single_id', lowercase_tokens: false },
      token_characters: { type: 'structkd_characters', min_padding_length: 3 },
    },
  } + (if $.task == 'ner' then {
         type: 'structkd_conll_ner',
         tag_scheme: 'IOB2',
         output_scheme: 'BIOES',
       } else {
         type: 'structkd_conllu',
         read_heads: false,
         tag_column: 'upos',
       }) + (if lang == null then {} else { lang: lang }),

  // words + a character CNN: the papers' students' input (and, larger, a non-transformer teacher)
  word_char_embedder(word_dim, char_dim, char_filters):: {
    token_embedders: {
      tokens: { type: 'embedding', embedding_dim: word_dim, trainable: true },
      token_characters: {
        type: 'character_encoding',
        embedding: { embedding_dim: char_dim, vocab_namespace: 'token_characters' },
        encoder: { type: 'cnn', embedding_dim: char_dim, num_filters: char_filters, ngram_filter_sizes: [3] },
      },
    },
  },

  bilstm(input_dim, hidden_dim):: {
    type: 'lstm', input_size: input_dim, hidden_size: hidden_dim, bidirectional: true, num_layers: 1,
  },

  // AllenNLP's multiprocess loader; a label the model never saw (evaluating on other data) is an error
  // naming the label, its file and line instead of a bare KeyError
  data_loader(batch_size=16):: { type: 'structkd_data_loader', batch_sampler: { type: 'bucket', batch_size: batch_size } },

  // STRUCTKD_OPTIMIZER picks the students' training recipe: 'adam' (the default, at the config's lr:
  // every published table here) or 'sgd', the BiLSTM-CRF recipe of the papers' code (flair's
  // sequence-tagger trainer): plain SGD at lr 0.1, halved whenever dev has not improved for 3 epochs.
  // Teachers keep Adam, so that a cached teacher serves both recipes.
  student_optimizer:: (
    local chosen = env('STRUCTKD_OPTIMIZER');
    if chosen == 'adam' || chosen == 'sgd' then chosen
    else error 'STRUCTKD_OPTIMIZER must be "adam" or "sgd", got "' + chosen + '"'
  ),
  trainer(epochs, lr=0.01, callbacks=[], student=false)::
    local sgd = student && $.student_optimizer == 'sgd';
  {
    // AllenNLP's gradient-descent trainer, with unknown settings (a typo) an error instead of ignored
    type: 'structkd_gradient_descent',
    optimizer: if sgd then { type: 'sgd', lr: 0.1 } else { type: 'adam', lr: lr },
    [if sgd then 'learning_rate_scheduler']: { type: 'structkd_reduce_on_plateau', mode: 'max', factor: 0.5, patience: 3 },
    num_epochs: epochs,
    validation_metric: $.validation_metric,
    grad_norm: 5.0,
    cuda_device: $.cuda_device,
    callbacks: callbacks,
    enable_default_callbacks: false,
  },

  random_seeds(seed):: { random_seed: seed, numpy_seed: seed, pytorch_seed: seed },

  // what `allennlp evaluate` of an archive uses: AllenNLP's evaluator that also prints the final metrics
  // (without --output-file AllenNLP's prints none) and names a label the model never saw, with file and line
  evaluation:: { type: 'structkd_evaluator' },
  // what every config starts from: its seeds and its evaluator
  run_settings(seed):: $.random_seeds(seed) + { evaluation: $.evaluation },
}

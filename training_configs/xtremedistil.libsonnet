// XtremeDistil (Mukherjee & Awadallah 2020): a MaxEnt teacher (TRANSFORMER_TEACHER: by default a
// fine-tuned transformer, teachers/transformer_maxent_tagger.jsonnet over TRANSFORMER_MODEL; any
// archive whose scores come from hidden states it exposes) distilled into a BiLSTM student
// with embedding size E and hidden size H, by the logit loss, optionally the representation loss
// (a shared GELU projection of the student's states to the teacher's hidden size TEACHER_HIDDEN_DIM),
// and the gold labels mixed in by kd_weight.
local c = import 'common.libsonnet';
local E = c.int_env('XTREMEDISTIL_E');
local H = c.int_env('XTREMEDISTIL_H');
function(representation_weight=0.0, kd_weight=0.5, stages=null, gradual_unfreezing=false, teacher=true) c.run_settings(c.seed) + {
  // a teacher given as a training config is trained once, before the student's data is read
  [if teacher then 'type']: 'structkd_teachers_first',
  local objective = {
    type: 'xtremedistil',
    student_hidden_dim: 2 * H,
    teacher_hidden_dim: c.int_env('TEACHER_HIDDEN_DIM'),
    logit_weight: 1.0,
    representation_weight: representation_weight,
    representation_loss: 'mse',
  },
  // XTREMEDISTIL_EMBEDDING: 'svd' or 'pca' (the student keeps the teacher's wordpiece vocabulary,
  // its embeddings initialised from the teacher's, compressed to E dimensions, and pools a word's
  // wordpieces), 'pieces' (the same, SVD over only the pieces of the text the student reads:
  // training, transfer and dev; STUDENT_ENCODER names the encoder), or 'words' (its own word
  // vocabulary, randomly initialised)
  local embedding = c.env('XTREMEDISTIL_EMBEDDING'),
  local indexer = if embedding == 'words' then { type: 'single_id' }
                  else if embedding == 'pieces' then { type: 'structkd_wordpieces', model_name: c.env('STUDENT_ENCODER') }
                  else { type: 'pretrained_transformer_mismatched', model_name: c.env('TRANSFORMER_MODEL'), max_length: 512 },
  local base_reader = c.ner_reader() + { token_indexers: { tokens: indexer } },
  local teacher_reader = {
    type: 'structkd_teacher',
    cuda_device: c.cuda_device,
    base_reader: base_reader,
    teachers: { xx: c.env('TRANSFORMER_TEACHER') },
    default_teacher: 'xx',
    objective: objective,
    cache_directory: c.cache_directory,
  },
  dataset_reader: if !teacher then base_reader else teacher_reader,
  // stage-wise schedules choose each stage's best epoch by its own loss on the dev set, so the dev
  // sentences carry the teacher's outputs too (annotated once, cached)
  validation_dataset_reader: if teacher && stages != null then teacher_reader else base_reader,
  train_data_path: c.env('TAGGING_TRAIN'),
  validation_data_path: c.env('TAGGING_DEV'),
  model: {
    type: 'structkd_maxent_tagger',
    label_encoding: c.label_encoding,
    dropout: 0.1,
    text_field_embedder: { token_embedders: { tokens: if embedding == 'words' then { type: 'embedding', embedding_dim: E }
      else if embedding == 'pieces' then {
        type: 'structkd_compressed_wordpieces', pretrained_file: c.env('STUDENT_ENCODER'), embedding_dim: E,
      } else {
        type: 'structkd_compressed_embedding', model_name: c.env('TRANSFORMER_MODEL'), embedding_dim: E, method: embedding,
        sub_token_mode: c.env('TRANSFORMER_POOLING'),
      } } },
    encoder: c.bilstm(E, H),
  } + (if teacher then { kd_loss: objective, kd_weight: kd_weight } else {}),
  data_loader: c.data_loader(16),
  // a stage's `share` of the epoch budget STRUCTKD_EPOCHS; with gradual unfreezing its epochs are
  // spread over the 4 layer groups (at least one each), so every schedule trains about as long
  local stage_epochs(stage) = std.max(1, std.round(c.epochs * stage.share)),
  local scheduled = if stages == null then [] else [
    std.mergePatch(stage, { share: null, epochs: stage_epochs(stage), epochs_per_group: std.max(1, std.floor(stage_epochs(stage) / 4)) })
    for stage in stages
  ],
  trainer: c.trainer(c.epochs, 0.005, if stages == null then [] else [
    { type: 'structkd_xtremedistil_stages', stages: scheduled, gradual_unfreezing: gradual_unfreezing, validation_metric: '-loss' },
  ]) + (if stages == null then {} else {
    // the schedule decides the length; each stage's best epoch is chosen by its dev loss, as in the paper
    num_epochs: std.foldl(function(total, stage) total + (if gradual_unfreezing then 4 * stage.epochs_per_group else stage.epochs), scheduled, 0),
    validation_metric: '-loss',
  }),
}

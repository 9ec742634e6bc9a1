// The sequence-labeling parser (Strzyz et al. 2019), the student of Cases 1b and 2b: a MaxEnt
// tagger over relative-PoS head labels joined with deprels, decoded back into trees for UAS/LAS.
local c = import 'common.libsonnet';
local p = import 'parsing.libsonnet';
// Like Strzyz et al., the student reads the words' PoS tags (which its relative-PoS labels refer
// to) as input, through a `single_id` token indexer of the tokens' `pos_`: the same input as the graph teachers.
// objective 'top1' gives the Top-1 baseline (the teacher's best trees as one-hot targets, and as
// labels for the unlabeled sentences of PARSE_UNLABELED when `unlabeled`).
function(teacher=null, objective='structural', unlabeled=false) c.run_settings(c.seed) + {
  // a teacher given as a training config is trained once, before the student's data is read
  [if teacher != null then 'type']: 'structkd_teachers_first',
  local base = p.reader(relpos=true) + {
    token_indexers+: { pos: { type: 'single_id', namespace: 'pos_tokens', feature_name: 'pos_' } },
  },
  dataset_reader: if teacher == null then base else {
    type: 'structkd_teacher',
    cuda_device: c.cuda_device,
    base_reader: base,
    teachers: { xx: teacher },
    default_teacher: 'xx',
    // the parser teachers give head and deprel distributions (one-hot on their best tree with
    // top1); the student maps them onto its labels and takes the structural (cross-entropy) loss
    objective: { type: objective },
    cache_directory: c.cache_directory,
  } + (if unlabeled then {
    // unlabeled sentences: words and PoS (which the relative-PoS labels refer to), no heads
    unlabeled_reader: base + (if p.format == 'ptb' then { relpos_tags: false, read_heads: false }
                              else { tag_column: null, read_heads: false }),
  } else {}),
  validation_dataset_reader: base,
  train_data_path: if unlabeled then std.manifestJsonMinified({ labeled: c.env('PARSE_TRAIN'), unlabeled: c.env('PARSE_UNLABELED') })
                   else c.env('PARSE_TRAIN'),
  validation_data_path: c.env('PARSE_DEV'),
  model: {
    type: 'structkd_seq_label_parser',
    dropout: 0.2,
    text_field_embedder: p.small_embedder + {
      token_embedders+: { pos: { type: 'embedding', embedding_dim: 32, vocab_namespace: 'pos_tokens' } },
    },
    encoder: c.bilstm(50 + 32 + 32, 128),
    [if teacher != null then 'kd_loss']: { type: 'structural' },
    [if teacher != null then 'kd_weight']: 1.0,
  },
  data_loader: c.data_loader(32),
  trainer: c.trainer(c.epochs, 2e-3, if teacher == null then [] else [
    { type: 'structkd_teacher_annealing', initial_weight: 1.0, anneal_rate: 0.1 },
  ]) + { validation_metric: if p.format == 'ptb' then '+UAS' else '+LAS' },
}

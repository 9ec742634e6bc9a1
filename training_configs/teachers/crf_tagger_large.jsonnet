// A large multilingual BiLSTM-CRF teacher (words 128 + characters 64, hidden 256): the demo's
// teacher, much larger and slower than the papers' student of student.libsonnet.
local c = import '../common.libsonnet';
(import 'crf_tagger_base.libsonnet')(c.env('TAGGING_TRAIN'), c.env('TAGGING_DEV'), word_dim=128, char_filters=64, hidden=256)

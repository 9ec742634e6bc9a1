// XtremeDistil D0: the same student (compressed teacher embeddings, BiLSTM) trained on gold labels only.
(import 'xtremedistil.libsonnet')(teacher=false)

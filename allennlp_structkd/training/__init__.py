from allennlp_structkd.training import callbacks, learning_rate_schedulers, metrics, teachers_first, trainers  # noqa: F401

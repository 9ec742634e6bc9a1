from allennlp_structkd.training import callbacks, learning_rate_schedulers, metrics, trainers  # noqa: F401

from allennlp_structkd.training import callbacks, learning_rate_schedulers, metrics  # noqa: F401

from allennlp_structkd.training import callbacks, metrics  # noqa: F401

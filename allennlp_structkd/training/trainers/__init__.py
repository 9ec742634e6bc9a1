from allennlp_structkd.training.trainers.checked_trainer import CheckedGradientDescentTrainer  # noqa: F401

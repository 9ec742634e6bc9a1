from allennlp_structkd.training.learning_rate_schedulers.reduce_on_plateau import ReduceOnPlateau  # noqa: F401

"""
``structkd_reduce_on_plateau``: the learning rate multiplied by ``factor`` when the validation metric
has not improved for ``patience`` epochs (the decay of the papers' SGD recipe).

AllenNLP 2.10's own ``reduce_on_plateau`` passes ``verbose`` to ``torch.optim.lr_scheduler.ReduceLROnPlateau``,
which torch 2.x no longer accepts, so it cannot be built on this project's torch; this is the same
scheduler without that argument.
"""
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.learning_rate_schedulers import LearningRateScheduler


@LearningRateScheduler.register("structkd_reduce_on_plateau")
class ReduceOnPlateau(LearningRateScheduler):
    """
    # Parameters

    optimizer : `torch.optim.Optimizer`
        Given by the trainer, not in the config.
    mode : `str`, optional (default = `"max"`)
        `"max"` when a larger validation metric is better (what AllenNLP's trainer passes for `+metric`).
    factor : `float`, optional (default = `0.5`)
        The learning rate is multiplied by this at each plateau.
    patience : `int`, optional (default = `3`)
        Epochs without improvement before the rate is reduced.
    min_lr : `float`, optional (default = `0.0`)
        The rate is never reduced below this.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, mode: str = "max", factor: float = 0.5, patience: int = 3,
                 min_lr: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ConfigurationError(f'structkd_reduce_on_plateau: mode must be "min" or "max", got {mode!r}')
        self.lr_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min" if mode == "min" else "max", factor=factor, patience=patience, min_lr=min_lr
        )

    def get_values(self):
        return [group["lr"] for group in self.lr_scheduler.optimizer.param_groups]

    def step(self, metric: Optional[float] = None) -> None:
        if metric is None:
            raise ConfigurationError("structkd_reduce_on_plateau needs a validation metric: give validation data")
        self.lr_scheduler.step(metric)

    def state_dict(self):
        return self.lr_scheduler.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.lr_scheduler.load_state_dict(state_dict)

"""A stand-in student for the callbacks' tests: the KDStudent protocol and nothing else."""
from typing import Optional

import torch

from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.protocol import KDStudent


class StandInStudent(torch.nn.Module, KDStudent):
    """A student defined outside the library: what the trainer and its callbacks read and set is all it has."""

    def __init__(self, kd_loss: Optional[KDLoss] = None, kd_weight: float = 1.0) -> None:
        super().__init__()
        self.kd_loss = kd_loss
        self._kd_weight = kd_weight

    @property
    def kd_weight(self) -> float:
        return self._kd_weight

    @kd_weight.setter
    def kd_weight(self, value: float) -> None:
        self._kd_weight = value

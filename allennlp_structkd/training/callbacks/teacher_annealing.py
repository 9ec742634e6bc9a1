import logging
from typing import Any, Dict

from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback

from allennlp_structkd.kd.protocol import KDStudent

logger = logging.getLogger(__name__)


@TrainerCallback.register("structkd_teacher_annealing")
class TeacherAnnealing(TrainerCallback):
    """
    Teacher annealing (Wang et al. 2020, Algorithm 1, lines 18–22): the model's ``kd_weight`` λ in
    ``λ·L_KD + (1-λ)·L_gold`` starts at ``initial_weight`` and drops by ``anneal_rate`` τ after
    every epoch, never below ``final_weight`` (``anneal_rate: 0`` keeps λ fixed).

    λ is part of the callback's state, which AllenNLP checkpoints, so ``allennlp train --recover``
    continues from the λ of the last finished epoch.

    # Parameters

    serialization_dir : `str`, required
        Given by the trainer.
    initial_weight : `float`, optional (default = `1.0`)
        λ for the first epoch, in [0, 1].
    anneal_rate : `float`, optional (default = `0.0`)
        Subtracted from λ after each epoch (0 keeps λ fixed).
    final_weight : `float`, optional (default = `0.0`)
        The floor of λ.
    """

    def __init__(
        self,
        serialization_dir: str,
        initial_weight: float = 1.0,
        anneal_rate: float = 0.0,
        final_weight: float = 0.0,
    ) -> None:
        super().__init__(serialization_dir)
        if not 0.0 <= final_weight <= initial_weight <= 1.0:
            raise ConfigurationError(
                f"need 0 <= final_weight <= initial_weight <= 1, got {final_weight} and {initial_weight}"
            )
        if anneal_rate < 0:
            raise ConfigurationError(f"anneal_rate must be >= 0, got {anneal_rate}")
        self.anneal_rate = anneal_rate
        self.final_weight = final_weight
        self.kd_weight = initial_weight

    @staticmethod
    def _model(trainer):
        model = trainer.model
        if not isinstance(model, KDStudent):
            raise ConfigurationError(f"structkd_teacher_annealing needs a student model (one that learns by distillation, "
                                     f"with a kd_weight: the taggers), not {type(model).__name__}")
        return model

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self._model(trainer).kd_weight = self.kd_weight
        logger.info("teacher annealing: kd_weight = %.4f", self.kd_weight)

    def on_epoch(self, trainer, metrics: Dict[str, Any], epoch: int, is_primary: bool = True, **kwargs) -> None:
        self.kd_weight = max(self.final_weight, self.kd_weight - self.anneal_rate)
        self._model(trainer).kd_weight = self.kd_weight
        logger.info("teacher annealing: after epoch %d, kd_weight = %.4f", epoch, self.kd_weight)

    def state_dict(self) -> Dict[str, Any]:
        return {"kd_weight": self.kd_weight}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.kd_weight = state_dict["kd_weight"]


# the earlier name, for the configs of runs made before (e.g. to resume one with --recover)
TrainerCallback.register("teacher_annealing")(TeacherAnnealing)

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback

from allennlp_structkd.allennlp_private import epochs_completed, restart_metric_tracker
from allennlp_structkd.kd.protocol import KDStudent
from allennlp_structkd.kd.xtremedistil_loss import XtremeDistilKD

logger = logging.getLogger(__name__)

DEFAULT_GROUPS = ["tag_projection", "kd_loss.projection", "encoder", "text_field_embedder"]


@TrainerCallback.register("structkd_xtremedistil_stages")
class XtremeDistilStages(TrainerCallback):
    """
    XtremeDistil's stage-wise schedules with optional gradual unfreezing (Mukherjee & Awadallah 2020).

    ``stages``: a list of ``{epochs, logit_weight, representation_weight, kd_weight}``; each stage
    sets the ``xtremedistil`` loss's weights and the model's λ (``kd_weight``: 1 = no gold labels,
    0 = gold labels only). D3.1: ``[representation], [labels + logits]``; D4.1: ``[representation],
    [logits], [labels]``.

    ``gradual_unfreezing`` (D3.2, D4.2): within every stage the parameter ``groups`` (name prefixes,
    top first: output layer, projection, BiLSTM, embeddings) are unfrozen one at a time, each for
    ``epochs_per_group`` epochs (a stage may set its own; it then lasts ``epochs_per_group ×
    len(groups)`` epochs), and
    before each further group the model goes back to the best checkpoint so far (``best.th``, by the
    stage's ``validation_metric``). Frozen parameters get ``requires_grad = False``: no gradient, so
    the optimizer leaves them alone. Parameters in no group always train.

    Model selection is per stage, because each stage has its own loss and their dev losses do not
    compare: the callback keeps the best epoch of the current stage (``stage_best.th``, by
    ``validation_metric`` over the dev set, which should carry the teacher's outputs so that the dev
    loss is the stage's own objective), goes back to it before the next group or stage, and starts
    the trainer's own best-model tracking afresh at each stage, so that the archived model is the
    best epoch of the *last* stage (the paper's final model), never an earlier stage's.

    The schedule is a function of the epoch, and the stage's best score is checkpointed, so
    ``allennlp train --recover`` resumes in the right stage with the right groups; stages,
    unfreezing and restores are logged.

    # Parameters

    serialization_dir : `str`, required
        Given by the trainer.
    stages : `List[Dict[str, float]]`, required
        ``{epochs, logit_weight, representation_weight, kd_weight}`` per stage, in order.
    gradual_unfreezing : `bool`, optional (default = `False`)
        Unfreeze ``groups`` one at a time within every stage (D3.2, D4.2).
    groups : `List[str]`, optional (default = `None`)
        Parameter-name prefixes, top first; required with gradual unfreezing.
    epochs_per_group : `int`, optional (default = `1`)
        Epochs each newly unfrozen group trains before the next (a stage may set its own).
    validation_metric : `str`, optional (default = `"-loss"`)
        What picks each stage's best epoch (``-`` lower is better, ``+`` higher).
    """

    def __init__(self, serialization_dir: str, stages: List[Dict[str, float]], gradual_unfreezing: bool = False,
                 groups: Optional[List[str]] = None, epochs_per_group: int = 1,
                 validation_metric: str = "-loss") -> None:
        super().__init__(serialization_dir)
        if not stages:
            raise ConfigurationError("xtremedistil_stages needs at least one stage")
        if validation_metric[:1] not in "+-" or len(validation_metric) < 2:
            raise ConfigurationError(f"validation_metric must start with + or -, got {validation_metric!r}")
        self.stages = stages
        self.gradual_unfreezing = gradual_unfreezing
        self.groups = groups or list(DEFAULT_GROUPS)
        self.validation_metric = validation_metric
        self.stage_best: Optional[float] = None  # the best score so far in the current stage
        self.stage_best_epoch: Optional[int] = None
        self.schedule: List[Tuple[int, int]] = []  # per epoch: (stage, number of unfrozen groups)
        for index, stage in enumerate(stages):
            if gradual_unfreezing:
                per_group = int(stage.get("epochs_per_group", epochs_per_group))
                for unfrozen in range(1, len(self.groups) + 1):
                    self.schedule += [(index, unfrozen)] * per_group
            else:
                self.schedule += [(index, len(self.groups))] * int(stage.get("epochs", 1))

    def total_epochs(self) -> int:
        return len(self.schedule)

    def apply(self, model: torch.nn.Module, epoch: int) -> Tuple[int, int]:
        stage_index, unfrozen = self.schedule[min(epoch, len(self.schedule) - 1)]
        stage = self.stages[stage_index]
        if not isinstance(model, KDStudent):
            raise ConfigurationError(f"structkd_xtremedistil_stages needs a student model (one that learns by distillation: "
                                     f"the taggers), not {type(model).__name__}")
        loss = model.kd_loss
        for name in ("logit_weight", "representation_weight"):
            if name in stage:
                if not isinstance(loss, XtremeDistilKD):
                    raise ConfigurationError(f"stage sets {name}, a weight of the xtremedistil loss, but the model's kd_loss "
                                             f"is {type(loss).__name__ if loss is not None else 'none'}")
                setattr(loss, name, float(stage[name]))
        if "kd_weight" in stage:
            model.kd_weight = float(stage["kd_weight"])
        active = self.groups[:unfrozen]
        for name, parameter in model.named_parameters():
            grouped = [g for g in self.groups if name.startswith(g)]
            parameter.requires_grad_(not grouped or any(name.startswith(g) for g in active))
        return stage_index, unfrozen

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        epoch = epochs_completed(trainer)
        stage, unfrozen = self.apply(trainer.model, epoch)
        logger.info("xtremedistil: epoch %d in stage %d, trainable groups %s", epoch, stage + 1, self.groups[:unfrozen])

    @property
    def stage_best_path(self) -> str:
        return os.path.join(self.serialization_dir, "stage_best.th")

    def _score(self, metrics: Dict[str, Any]) -> Optional[float]:
        value = metrics.get("validation_" + self.validation_metric[1:])
        if value is None:
            return None
        return float(value) if self.validation_metric[0] == "+" else -float(value)

    def on_epoch(self, trainer, metrics: Dict[str, Any], epoch: int, is_primary: bool = True, **kwargs) -> None:
        score = self._score(metrics)
        if score is not None and (self.stage_best is None or score > self.stage_best):
            self.stage_best, self.stage_best_epoch = score, epoch
            if is_primary:  # written atomically: a run killed here keeps the previous best
                torch.save(trainer.model.state_dict(), self.stage_best_path + ".tmp")
                os.replace(self.stage_best_path + ".tmp", self.stage_best_path)
        following = epoch + 1
        if following >= len(self.schedule):
            return
        if self.schedule[following] != self.schedule[epoch]:
            if os.path.isfile(self.stage_best_path):  # back to the stage's best before the next group or stage
                trainer.model.load_state_dict(torch.load(self.stage_best_path, map_location="cpu"))
                logger.info("xtremedistil: restored epoch %s of stage %d (%s %.4f)", self.stage_best_epoch,
                            self.schedule[epoch][0] + 1, self.validation_metric, self.stage_best or float("nan"))
            if self.schedule[following][0] != self.schedule[epoch][0]:
                # a new stage, a new loss: its epochs are compared only with one another, and the
                # previous stage's best is never restored again
                self.stage_best, self.stage_best_epoch = None, None
                if is_primary and os.path.isfile(self.stage_best_path):
                    os.remove(self.stage_best_path)
                restart_metric_tracker(trainer, following)  # best_epoch still counts from the run's start
        stage, unfrozen = self.apply(trainer.model, following)
        logger.info("xtremedistil: epoch %d in stage %d, trainable groups %s", following, stage + 1, self.groups[:unfrozen])

    def state_dict(self) -> Dict[str, Any]:
        return {"stage_best": self.stage_best, "stage_best_epoch": self.stage_best_epoch}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.stage_best = state_dict.get("stage_best")
        self.stage_best_epoch = state_dict.get("stage_best_epoch")


# the earlier name, for the configs of runs made before (e.g. to resume one with --recover)
TrainerCallback.register("xtremedistil_stages")(XtremeDistilStages)

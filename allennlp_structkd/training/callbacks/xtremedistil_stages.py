import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback

logger = logging.getLogger(__name__)

DEFAULT_GROUPS = ["tag_projection", "kd_loss.projection", "encoder", "text_field_embedder"]


@TrainerCallback.register("xtremedistil_stages")
class XtremeDistilStages(TrainerCallback):
    """
    XtremeDistil's stage-wise schedules with optional gradual unfreezing (Mukherjee & Awadallah 2020).

    ``stages``: a list of ``{epochs, logit_weight, representation_weight, kd_weight}``; each stage
    sets the ``xtremedistil`` loss's weights and the model's λ (``kd_weight``: 1 = no gold labels,
    0 = gold labels only). D3.1: ``[representation], [labels + logits]``; D4.1: ``[representation],
    [logits], [labels]``.

    ``gradual_unfreezing`` (D3.2, D4.2): within every stage the parameter ``groups`` (name prefixes,
    top first: output layer, projection, BiLSTM, embeddings) are unfrozen one at a time, each for
    ``epochs_per_group`` epochs (a stage then lasts ``epochs_per_group × len(groups)`` epochs), and
    before each further group the model goes back to the best checkpoint so far (``best.th``, by the
    trainer's validation metric, e.g. ``-loss``). Frozen parameters get ``requires_grad = False``:
    no gradient, so the optimizer leaves them alone. Parameters in no group always train.

    The schedule is a function of the epoch, so ``allennlp train --recover`` resumes in the right
    stage with the right groups; stages and unfreezing are logged.
    """

    def __init__(self, serialization_dir: str, stages: List[Dict[str, float]], gradual_unfreezing: bool = False,
                 groups: Optional[List[str]] = None, epochs_per_group: int = 1) -> None:
        super().__init__(serialization_dir)
        if not stages:
            raise ConfigurationError("xtremedistil_stages needs at least one stage")
        self.stages = stages
        self.gradual_unfreezing = gradual_unfreezing
        self.groups = groups or list(DEFAULT_GROUPS)
        self.schedule: List[Tuple[int, int]] = []  # per epoch: (stage, number of unfrozen groups)
        for index, stage in enumerate(stages):
            if gradual_unfreezing:
                for unfrozen in range(1, len(self.groups) + 1):
                    self.schedule += [(index, unfrozen)] * epochs_per_group
            else:
                self.schedule += [(index, len(self.groups))] * int(stage.get("epochs", 1))

    def total_epochs(self) -> int:
        return len(self.schedule)

    def apply(self, model: torch.nn.Module, epoch: int) -> Tuple[int, int]:
        stage_index, unfrozen = self.schedule[min(epoch, len(self.schedule) - 1)]
        stage = self.stages[stage_index]
        loss = getattr(model, "kd_loss", None)
        for name in ("logit_weight", "representation_weight"):
            if name in stage:
                if loss is None or not hasattr(loss, name):
                    raise ConfigurationError(f"stage sets {name} but the model's kd_loss has none")
                setattr(loss, name, float(stage[name]))
        if "kd_weight" in stage:
            model.kd_weight = float(stage["kd_weight"])
        active = self.groups[:unfrozen]
        for name, parameter in model.named_parameters():
            grouped = [g for g in self.groups if name.startswith(g)]
            parameter.requires_grad_(not grouped or any(name.startswith(g) for g in active))
        return stage_index, unfrozen

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        epoch = max(getattr(trainer, "_start_after_epochs_completed", 0), getattr(trainer, "_epochs_completed", 0))
        stage, unfrozen = self.apply(trainer.model, epoch)
        logger.info("xtremedistil: epoch %d in stage %d, trainable groups %s", epoch, stage + 1, self.groups[:unfrozen])

    def on_epoch(self, trainer, metrics: Dict[str, Any], epoch: int, is_primary: bool = True, **kwargs) -> None:
        following = epoch + 1
        if following >= len(self.schedule):
            return
        if self.gradual_unfreezing and self.schedule[following] != self.schedule[epoch]:
            best = os.path.join(self.serialization_dir, "best.th")
            if os.path.isfile(best):  # back to the best checkpoint before unfreezing more
                trainer.model.load_state_dict(torch.load(best, map_location="cpu"))
                logger.info("xtremedistil: restored the best checkpoint before the next group")
        stage, unfrozen = self.apply(trainer.model, following)
        logger.info("xtremedistil: epoch %d in stage %d, trainable groups %s", following, stage + 1, self.groups[:unfrozen])

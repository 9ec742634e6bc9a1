"""
``xtremedistil``: the logit and representation losses of XtremeDistil (Mukherjee & Awadallah 2020),
a :class:`~allennlp_structkd.kd.losses.KDLoss` like the structured objectives.
"""
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.kd.losses import KDLoss, Targets, masked_sum
from allennlp_structkd.kd.teacher_distributions import TeacherDistribution
from allennlp_structkd.structures.potentials import Potentials


@KDLoss.register("xtremedistil")
class XtremeDistilKD(KDLoss):
    """
    The distillation losses of XtremeDistil (Mukherjee & Awadallah 2020), per sentence:

    * logit loss, weight ``logit_weight``: ``Σ_i ||s_i - t_i||² / L``, the MSE between the student's
      scores and the teacher's logits (before softmax);
    * representation loss, weight ``representation_weight``: the student's hidden states through a
      shared projection ``GELU(W h + b)`` to the size of the teacher's hidden states, compared with
      them by ``mse`` (``Σ_i ||p_i - t_i||² / H``, the authors' released code) or ``kl``
      (``Σ_i KL(softmax(t_i) || softmax(p_i))``, the paper).

    The teacher's hidden states are those its scores are computed from (its encoder's output, or the
    transformer's last layer when it has no encoder). The label loss is the model's gold loss, mixed
    in by ``kd_weight`` (λ): D1 is ``representation_weight: 0``; D2 sets both weights. The projection
    is trained with the student (it is part of the model, through its ``kd_loss``).

    # Parameters

    student_hidden_dim : `int`, required
        The size of the student's hidden states (its encoder's output).
    teacher_hidden_dim : `int`, required
        The size of the teacher's hidden states, which the projection maps to.
    logit_weight : `float`, optional (default = `1.0`)
        The weight of the logit loss.
    representation_weight : `float`, optional (default = `0.0`)
        The weight of the representation loss (0: D1).
    representation_loss : `str`, optional (default = `"mse"`)
        ``"mse"`` (the released code) or ``"kl"`` (the paper).
    """

    def __init__(self, student_hidden_dim: int, teacher_hidden_dim: int, logit_weight: float = 1.0,
                 representation_weight: float = 0.0, representation_loss: str = "mse") -> None:
        super().__init__()
        if representation_loss not in ("mse", "kl"):
            raise ConfigurationError(f"representation_loss must be 'mse' or 'kl', got {representation_loss!r}")
        self.logit_weight = logit_weight
        self.representation_weight = representation_weight
        self.representation_loss = representation_loss
        self.projection = torch.nn.Sequential(torch.nn.Linear(student_hidden_dim, teacher_hidden_dim), torch.nn.GELU())

    needs = ("teacher_logits", "teacher_hidden")

    def signature(self) -> str:
        return "XtremeDistil-logits-hidden"

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        scores, hidden = teacher.potentials(), teacher.hidden_states()
        mask = scores.mask.unsqueeze(2).to(scores.emissions.dtype)
        return {"teacher_logits": scores.emissions.detach() * mask, "teacher_hidden": hidden.detach() * mask}

    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        mask = student.mask
        logits = targets["teacher_logits"]
        loss = self.logit_weight * masked_sum((student.emissions - logits) ** 2, mask) / logits.size(2)
        if self.representation_weight:
            if student_hidden is None:
                raise ConfigurationError("representation KD needs the student's hidden states")
            projected = self.projection(student_hidden)
            teacher = targets["teacher_hidden"]
            if self.representation_loss == "mse":
                term = masked_sum((projected - teacher) ** 2, mask) / teacher.size(2)
            else:
                log_p = projected.log_softmax(-1)
                target = teacher.softmax(-1)
                term = masked_sum(target * (target.clamp(min=1e-30).log() - log_p), mask)
            loss = loss + self.representation_weight * term
        return loss

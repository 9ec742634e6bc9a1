"""
Knowledge-distillation objectives for sequence labeling, as registered, composable pieces.

Each :class:`KDLoss` knows two things:

* :meth:`KDLoss.teacher_targets` — what it needs from a teacher, computed batched under
  ``torch.no_grad()`` from the teacher's distribution (a
  :class:`~allennlp_structkd.kd.teacher_distributions.TeacherDistribution`: a chain, tokens, a parser's heads,
  a span chart; the teacher-wrapping reader calls it once per sentence and caches the result);
* :meth:`KDLoss.forward` — the loss of a student given those targets, one value per sentence.

Notation: ``x`` a sentence, ``y`` a label sequence, ``u`` a substructure (a label at a position, or a
pair of adjacent labels), ``P_t``/``P_s`` teacher/student distributions, ``T`` the temperature.
The training loss is ``λ·L_KD + (1-λ)·L_gold`` (Algorithm 1 of Wang et al. 2020; λ is the model's
``kd_weight``, annealed by :class:`~allennlp_structkd.training.callbacks.TeacherAnnealing`).

Temperature: ``temperature_mode: "local"`` (the default) or ``"global"``, defined in
:mod:`allennlp_structkd.kd.temperature` for every teacher (CRF, MaxEnt, parsers, span NER). Both
modes give targets that are the marginals of one distribution over structures, so every objective
stays a cross-entropy. At ``T = 1`` both are the identity. Top-K objectives have a global
temperature only.

Constraints: targets are computed from the teacher's :meth:`Potentials.constrained` scores, so a
structure its CRF forbids (an invalid BIO/BIOES transition) has probability exactly 0 and is never
one of its k best, whatever ``k``.
"""
import math
from typing import Dict, List, Optional, cast

import torch
from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.kd.targets import ONE_BEST, POTENTIALS, UNARY_MARGINALS
from allennlp_structkd.kd.teacher_distributions import SequenceTeacher, TeacherDistribution, kbest_targets
from allennlp_structkd.kd.temperature import temper_distribution
from allennlp_structkd.structures.potentials import Potentials

Targets = Dict[str, torch.Tensor]

def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over everything but the batch dimension, of the entries where ``mask`` (B, n) holds."""
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    return torch.where(mask, values, torch.zeros_like(values)).flatten(1).sum(1)


def _cross_entropy(target: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """``-Σ target · log_probs`` with 0·log 0 = 0 (and 0·(-inf) = 0)."""
    return -torch.where(target > 0, target * log_probs, torch.zeros_like(log_probs))


class KDLoss(torch.nn.Module, Registrable):
    """
    Base class of the KD objectives; see the module docstring. An objective computes its targets from a
    teacher's distribution (``teacher_targets``, run by the ``structkd_teacher`` reader), asking it for the kind
    of targets its ``recipe`` names, and the student's loss against them (``forward``, from the student's
    :class:`Potentials`).

    # Parameters

    temperature : `float`, optional (default = `1.0`)
        T > 0; the teacher's distribution is tempered by it before targets are taken.
    temperature_mode : `str`, optional (default = `"local"`)
        ``"local"``: each word's (chain-rule) distribution is tempered, a consistent Markov chain for a
        CRF teacher; ``"global"``: every teacher score is divided by T (the whole structure's
        distribution tempered).
    """

    default_implementation = "structural"
    # what the objective asks of its teacher (a recipe of kd/targets.py); a teacher names the recipes it gives
    recipe: str = POTENTIALS
    # the targets the student's loss reads (forward): a batch without one of them is an error naming them
    needs: tuple = ()

    def __init__(self, temperature: float = 1.0, temperature_mode: str = "local") -> None:
        super().__init__()
        if not math.isfinite(temperature) or temperature <= 0:  # NaN compares false to everything
            raise ConfigurationError(f"temperature must be a finite number > 0, got {temperature}")
        if temperature_mode not in ("local", "global"):
            raise ConfigurationError(f"temperature_mode must be 'local' or 'global', got {temperature_mode!r}")
        self.temperature = float(temperature)
        self.temperature_mode = temperature_mode

    # -- teacher side ------------------------------------------------------------------------
    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        raise NotImplementedError

    def storage_targets(self, teacher: TeacherDistribution) -> Targets:
        """What a teacher gives to be cached: the targets themselves, or a compact form from which
        :meth:`expand_targets` recomputes them exactly (the reader expands them, batched, whenever it reads them)."""
        return self.teacher_targets(teacher)

    def expand_targets(self, stored: Targets, mask: torch.Tensor) -> Targets:
        """The targets of a batch of :meth:`storage_targets` (``mask`` ``(B, n)``: the words)."""
        return stored

    # bumped whenever what teacher_targets computes changes, so that caches of the old targets are not
    # reused: 2 = constrained targets, consistent local temperature, renormalised Top-WK
    TARGETS_VERSION = 2

    def signature(self) -> str:
        """Identifies the targets this objective computes (part of the teacher cache key)."""
        return f"{type(self).__name__}-v{self.TARGETS_VERSION}-T{self.temperature:g}-{self.temperature_mode}"

    @property
    def score_scale(self) -> float:
        """What a teacher multiplies its scores by before inference: ``1/T`` in global mode, else 1."""
        return 1.0 / self.temperature if self.temperature_mode == "global" else 1.0

    @property
    def local_temperature(self) -> float:
        """The temperature of each local factor: ``T`` in local mode, else 1."""
        return self.temperature if self.temperature_mode == "local" else 1.0

    def temper(self, probs: torch.Tensor, start_dim: int) -> torch.Tensor:
        """Local temperature of distributions over the dimensions from ``start_dim`` on (global mode: unchanged)."""
        if self.temperature_mode != "local":
            return probs
        return temper_distribution(probs, self.temperature, start_dim)

    # -- student side ------------------------------------------------------------------------
    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One loss value per sentence, ``(B,)``, from the student's distribution and the teacher's targets;
        ``student_hidden`` ``(B, n, H)``: the states the student's scores were computed from, which an objective
        that compares representations (XtremeDistil's) takes, and the others leave."""
        raise NotImplementedError

    def loss_signature(self) -> str:
        """What the student's loss computes, whatever the targets' temperature (the reader tempers them)."""
        return type(self).__name__

    def accepts_targets_of(self, objective: "KDLoss") -> bool:
        """Whether this loss learns what it should from targets the reader computes for ``objective``."""
        return objective.loss_signature() == self.loss_signature()

    def check_targets(self, given) -> None:
        """A clear error when the teacher targets ``given`` (their names) lack what this objective's loss reads:
        the reader computed them for another objective."""
        missing = sorted(set(self.needs) - set(given))
        if missing:
            raise ConfigurationError(
                f"the model's kd_loss ({type(self).__name__}) needs the teacher targets {missing}, but the batch carries "
                f"{sorted(given)}: the reader's objective is another one. Give the reader and the model the same "
                "objective (the configs' `objective`)")


@KDLoss.register("structural")
class StructuralKD(KDLoss):
    """
    Structural KD (Wang et al. 2021, Eq. 3 and 6): the cross-entropy between the teacher's and the
    student's structure distributions, in its factorised form::

        L = -Σ_y P_t(y|x) log P_s(y|x) = -Σ_u P_t(u|x) · Score_s(u, x) + log Z_s(x)

    * Case 1a, CRF → CRF: ``u`` ranges over labels at each position (emissions, start, end) and
      pairs of adjacent labels (transitions), with the teacher's exact marginals;
    * Case 2a, CRF → MaxEnt (Eq. 7): the student factorises over tokens, so only the teacher's
      unary marginals enter: ``-Σ_i Σ_a P_t(y_i=a) log P_s(y_i=a)``;
    * Case 3, MaxEnt → CRF (Eq. 8): the teacher's pair marginals are products of its unaries,
      ``P_t(y_{i-1}=a, y_i=b) = P_t(y_{i-1}=a) P_t(y_i=b)``, never materialised.
    """

    recipe = UNARY_MARGINALS
    needs = ("teacher_unary",)

    def accepts_targets_of(self, objective: KDLoss) -> bool:
        # a one-hot best structure is a distribution like any other: its cross-entropy is -log P_s(best), Top-1
        return super().accepts_targets_of(objective) or objective.recipe == ONE_BEST

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        return teacher.marginal_targets(self, pairwise=True)

    def signature(self) -> str:
        # "-scores": its entries hold the teacher's chain scores (storage_targets), which code that knew only the
        # marginals would misread; caches of that code hold the marginals under the plain signature
        return f"{super().signature()}-scores"

    def storage_targets(self, teacher: TeacherDistribution) -> Targets:
        """Where the teacher has them, its constrained scores instead of its pair marginals: ``(n, L)`` a sentence and
        its ``(L, L)`` transitions once per teacher (the cache's shared targets), for ``(n, L, L)`` a sentence (1/18 of
        the bytes with 17 labels); :meth:`expand_targets` runs the same computation as :meth:`teacher_targets` on
        them. Other structures (a parser's heads, a span chart's BIOES marginals) store the targets themselves."""
        compact = teacher.compact_marginals()
        return self.teacher_targets(teacher) if compact is None else compact

    def expand_targets(self, stored: Targets, mask: torch.Tensor) -> Targets:
        if "teacher_emissions" not in stored:  # already the targets (an older cache, a parser's own targets)
            return stored
        # the scores hold their constraints already (-inf), so the teacher is rebuilt without any
        scores = Potentials(stored["teacher_emissions"], mask, stored.get("teacher_transitions"),  # type: ignore[abstract]
                            stored.get("teacher_start"), stored.get("teacher_end"))  # (its __new__ picks the structure)
        return self.teacher_targets(SequenceTeacher(scores))

    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        # the cross-entropy over the student's factors, whatever its structure (chain, tokens)
        return student.log_partition() - student.expected_score(targets["teacher_unary"], targets.get("teacher_pairwise"))


@KDLoss.register("posterior")
class PosteriorKD(KDLoss):
    """
    Posterior distillation (Wang et al. 2020, Eq. 13): match the student's token marginals to the
    teacher's, ``-Σ_i Σ_a P_t(y_i=a|x) log P_s(y_i=a|x)``; for a CRF student ``P_s(y_i=a|x)`` are its
    exact marginals (forward-backward), for a MaxEnt student its softmax.
    """

    needs = ("teacher_unary",)
    recipe = UNARY_MARGINALS

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        return teacher.marginal_targets(self, pairwise=False)

    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        return masked_sum(_cross_entropy(targets["teacher_unary"], student.unary_log_marginals()), student.mask)


@KDLoss.register("token")
class TokenKD(KDLoss):
    """
    Token-level KD (Wang et al. 2020, Eq. 4), MaxEnt → MaxEnt: ``-Σ_i Σ_a q_t(a|x_i) log q_s(a|x_i)``
    with ``q_t = softmax(teacher logits / T)`` and ``q_s`` the student's softmax over its scores
    (for a CRF student, over its emission scores).
    """

    needs = ("teacher_probs",)

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        scores = teacher.potentials()
        with torch.no_grad():
            probs = (scores.emissions.detach() / self.temperature).softmax(dim=2)
            return {"teacher_probs": probs * scores.mask.unsqueeze(2).to(probs.dtype)}

    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        return masked_sum(_cross_entropy(targets["teacher_probs"], student.emissions.log_softmax(dim=2)), student.mask)


@KDLoss.register("emission")
class EmissionKD(TokenKD):
    """
    Emission distillation (Wang et al. 2020, Eq. 5): token-level KD on a CRF teacher's and a CRF
    student's *emission* scores, ignoring transitions: the same formula as :class:`TokenKD` with
    ``q_t = softmax(teacher emissions / T)``.
    """


@KDLoss.register("top_k")
class TopKKD(KDLoss):
    """
    Top-K distillation (Wang et al. 2020, Eq. 8): the teacher's K best label sequences (exact k-best
    Viterbi over its allowed sequences) as pseudo targets, ``-(1/K) Σ_k log P_s(ŷ_k|x)``; a sentence
    with fewer than K allowed sequences uses all of them, and K counts those.
    ``k = 1`` is Top-1 pseudo labeling (registered as ``top1``).

    # Parameters

    k : `int`, optional (default = `5`)
        How many of the teacher's best sequences.
    temperature : `float`, optional (default = `1.0`)
        As :class:`KDLoss`; ``global`` only (a structure's score is divided by T).
    temperature_mode : `str`, optional (default = `"global"`)
        Must be ``"global"``.
    """

    needs = ("teacher_kbest_tags", "teacher_kbest_weights")

    weighted = False

    def __init__(self, k: int = 5, temperature: float = 1.0, temperature_mode: str = "global") -> None:
        if temperature_mode != "global":
            raise ConfigurationError("Top-K objectives only have a global temperature (temperature_mode: 'global')")
        super().__init__(temperature, temperature_mode)
        if k < 1:
            raise ConfigurationError(f"k must be >= 1, got {k}")
        self.k = k

    def signature(self) -> str:
        return f"{super().signature()}-k{self.k}"

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        return kbest_targets(teacher.potentials(), self.k, self.temperature, self.weighted)

    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        weights = targets["teacher_kbest_weights"]
        log_probs = student.sequence_log_probs(targets["teacher_kbest_tags"].long())
        return -torch.where(weights > 0, weights * log_probs, torch.zeros_like(log_probs)).sum(1)


@KDLoss.register("top_wk")
class WeightedTopKKD(TopKKD):
    """
    Weighted Top-K (Wang et al. 2020, Eq. 9): each of the K best sequences ``T`` weighted by the
    teacher's probability renormalised over them, ``p'_t(y|x) = P_t(y|x) / Σ_{ŷ∈T} P_t(ŷ|x)``:
    ``-Σ_{y∈T} p'_t(y|x) log P_s(y|x)`` (the weights sum to 1, as in the paper's Table 1).
    """

    weighted = True


@KDLoss.register("top1")
class Top1KD(TopKKD):
    """Top-1 pseudo labels: the teacher's Viterbi sequence as gold, ``-log P_s(ŷ|x)``."""

    recipe = ONE_BEST

    def __init__(self, temperature: float = 1.0, temperature_mode: str = "global") -> None:
        super().__init__(1, temperature, temperature_mode)

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        # a chain's best sequence as its 1-best (kbest_targets); a parser's best tree, one-hot
        return teacher.one_best_targets(self)


@KDLoss.register("mixture")
class MixtureKD(KDLoss):
    """
    A weighted sum of objectives: ``Σ_j w_j L_j``. Their targets are merged, so components that need
    the same target must agree on it (the same temperature).

    # Parameters

    losses : `List[KDLoss]`, required
        The objectives, at least one.
    weights : `List[float]`, optional (default = `None`)
        One per objective; default, the average.
    """

    def __init__(self, losses: List[KDLoss], weights: Optional[List[float]] = None) -> None:
        super().__init__()
        if not losses:
            raise ConfigurationError("a mixture needs at least one loss")
        self.losses = torch.nn.ModuleList(losses)
        self.weights = weights or [1.0 / len(losses)] * len(losses)
        if len(self.weights) != len(losses):
            raise ConfigurationError(f"{len(losses)} losses but {len(self.weights)} weights")

    @property
    def components(self) -> List[KDLoss]:
        """The mixture's losses, typed (a ModuleList yields plain Modules)."""
        return cast(List[KDLoss], list(self.losses))

    def signature(self) -> str:
        return "Mixture(" + ",".join(loss.signature() for loss in self.components) + ")"

    @property
    def needs(self) -> tuple:  # type: ignore[override]
        return tuple(sorted({name for loss in self.components for name in loss.needs}))

    @property
    def recipe(self) -> str:  # type: ignore[override]
        # one teacher computes every component's targets at once: from a recipe they share, else from its potentials
        recipes = {loss.recipe for loss in self.components}
        return recipes.pop() if len(recipes) == 1 else POTENTIALS

    def loss_signature(self) -> str:
        return "Mixture(" + ",".join(f"{w:g}*{loss.loss_signature()}" for w, loss in zip(self.weights, self.components)) + ")"

    def teacher_targets(self, teacher: TeacherDistribution) -> Targets:
        targets: Targets = {}
        for loss in self.components:
            for name, value in loss.teacher_targets(teacher).items():
                if name in targets and not torch.equal(targets[name], value):
                    raise ConfigurationError(f"mixture components disagree on {name}: use the same temperature")
                targets[name] = value
        return targets

    def forward(self, student: Potentials, targets: Targets, student_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        return sum(w * loss(student, targets, student_hidden) for w, loss in zip(self.weights, self.components))


@KDLoss.register("posterior+top_wk")
class PosteriorTopWK(MixtureKD):
    """Pos.+Top-WK of Wang et al. 2020: the average of :class:`PosteriorKD` and :class:`WeightedTopKKD`."""

    def __init__(self, k: int = 5, temperature: float = 1.0) -> None:
        super().__init__([PosteriorKD(temperature, "global"), WeightedTopKKD(k, temperature, "global")])


def check_label_sets(student_labels: List[str], teacher_labels: List[str]) -> None:
    """The student must have every teacher label, and every student label must be some teacher's."""
    student_only = sorted(set(student_labels) - set(teacher_labels))
    teacher_only = sorted(set(teacher_labels) - set(student_labels))
    if student_only or teacher_only:
        raise ConfigurationError(
            "teacher and student label sets differ (labels are matched by string): "
            f"labels only the student has: {student_only or 'none'}; "
            f"labels only the teachers have: {teacher_only or 'none'}"
        )

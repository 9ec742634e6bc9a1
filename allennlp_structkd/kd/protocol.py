"""
The interfaces between models and knowledge distillation. Every model that can teach derives from
:class:`KDTeacher` (the taggers, the graph parsers, the span NER model); the teacher reader, the cache
key, the predictors and the spaCy component ask it, never guess from attributes. Every model that can
learn by distillation derives from :class:`KDStudent` (the taggers, the sequence-labeling parser among
them); the trainer and its callbacks ask it.
"""
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Dict, FrozenSet, List, NamedTuple, Optional, Type

import torch
from allennlp.common.checks import ConfigurationError

if TYPE_CHECKING:  # the losses module imports this one's users, not this module: no cycle at run time
    from allennlp_structkd.kd.losses import KDLoss
    from allennlp_structkd.kd.teacher_distributions import TeacherDistribution


def check_recipe(teacher: str, recipes: FrozenSet[str], objective: "KDLoss", why: str = "") -> None:
    """A :class:`ConfigurationError` when ``objective`` asks for a recipe not in ``recipes``, naming what the teacher
    (``teacher``: what it is) gives, the objectives it can teach, and ``why`` where the teacher says so."""
    if objective.recipe in recipes:
        return
    from allennlp_structkd.kd.losses import KDLoss

    classes = {name: KDLoss.resolve_class_name(name)[0] for name in KDLoss.list_available()}
    served = sorted(name for name, cls in classes.items() if cls.recipe in recipes)
    raise ConfigurationError(
        f"a {teacher} teacher gives {' or '.join(sorted(recipes))} targets, and the objective "
        f"{objective.signature()} asks for {objective.recipe}{why}: use an objective it can teach ({', '.join(served)})")


class TeacherOutputs(NamedTuple):
    """What a teacher gives for a batch (a tuple: ``targets, pseudo_labels, mask = ...`` unpacks it)."""

    targets: Dict[str, torch.Tensor]
    """What the objective needs (see :mod:`allennlp_structkd.kd.targets`), its temperature applied."""
    pseudo_labels: Optional[torch.Tensor]
    """The best labels ``(B, n)``, pseudo gold for unlabeled sentences; None for a parser, which gives its
    best tree as ``pseudo_heads``/``pseudo_deprels`` targets instead."""
    mask: torch.Tensor
    """The word mask ``(B, n)``."""


class KDTeacher(ABC):
    """
    What every model that can teach is, besides an :class:`~allennlp.models.Model`.

    * ``labels`` / ``label_namespace``: the label strings its targets are indexed by (the student's
      labels are matched to them by string);
    * :attr:`reads_pos`: whether it reads the sentence's PoS tags besides its words (then they are
      part of its input: needed at annotation and prediction, and part of the cache key);
    * :attr:`needs_pos_to_predict`: whether its predictions need the PoS tags (those it reads, or, for
      the sequence-labeling parser, those its relative-position labels are decoded with);
    * :attr:`teacher_structure`: the kind of distribution it gives
      (:mod:`allennlp_structkd.kd.teacher_distributions`), from which the objectives it teaches follow
      (:meth:`check_teaches`);
    * :meth:`teacher_distribution`: that distribution for a batch. The model says only what it is: each
      objective derives its targets from the distribution (:meth:`teacher_outputs`).
    """

    labels: List[str]
    label_namespace: str
    teacher_structure: ClassVar[Type["TeacherDistribution"]]

    def check_teaches(self, objective: "KDLoss") -> None:
        """A :class:`ConfigurationError` naming what this teacher gives when ``objective`` asks for something else."""
        check_recipe(type(self).__name__, self.teacher_structure.gives(), objective)

    @property
    def reads_pos(self) -> bool:
        return False

    @property
    def needs_pos_to_predict(self) -> bool:
        return self.reads_pos

    @abstractmethod
    def teacher_distribution(self, tokens: Dict[str, Dict[str, torch.Tensor]], **tensors: Any) -> "TeacherDistribution":
        """Its distribution for a batch of ``tokens`` and the batch's other fields (an instance of
        :attr:`teacher_structure`)."""

    def teacher_outputs(self, objective: "KDLoss", tokens: Dict[str, Dict[str, torch.Tensor]],
                        **tensors: Any) -> TeacherOutputs:
        """The targets of ``objective`` (a :class:`~allennlp_structkd.kd.losses.KDLoss`) for a batch, in its storage
        form, under ``torch.no_grad()``, with the teacher's pseudo labels and word mask."""
        self.check_teaches(objective)
        with torch.no_grad():
            distribution = self.teacher_distribution(tokens, **tensors)
            return TeacherOutputs(objective.storage_targets(distribution), distribution.pseudo_labels(), distribution.mask)


class KDStudent(ABC):
    """
    What every model that can learn by distillation is, besides an :class:`~allennlp.models.Model`:
    what the trainer and its callbacks read and set.

    * ``kd_loss``: the objective it learns the teacher's targets with (a
      :class:`~allennlp_structkd.kd.losses.KDLoss`), or None for a model trained on gold labels only;
      the trainer checks it against the teacher reader's objective before training;
    * :attr:`kd_weight`: λ, the weight of the KD loss on labeled sentences (``1 - λ`` on their gold
      loss), which teacher annealing and XtremeDistil's stages set between epochs.
    """

    kd_loss: Optional["KDLoss"]

    @property
    @abstractmethod
    def kd_weight(self) -> float:
        """λ, in [0, 1]."""

    @kd_weight.setter
    @abstractmethod
    def kd_weight(self, value: float) -> None:
        """Set λ (a callback's schedule, between epochs)."""


class PrecomputingIndexer(ABC):
    """
    A token indexer that computes a batch of sentences at once much faster than one sentence at a time (the frozen
    encoder's features): a teacher gives it each batch's sentences (:meth:`prefetch`) before indexing them.
    """

    @abstractmethod
    def prefetch(self, sentences: List[List[str]]) -> None:
        """Compute (or look up) the sentences about to be indexed, in one batch."""

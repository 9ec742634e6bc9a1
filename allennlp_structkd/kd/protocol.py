"""
The one interface between a teacher model and knowledge distillation. Every model that can teach
derives from :class:`KDTeacher` (the taggers, the graph parsers, the span NER model); the teacher
reader, the cache key, the predictors and the spaCy component ask it, never guess from attributes.
"""
from typing import Dict, List, Optional, Tuple

import torch


class KDTeacher:
    """
    A mixin for :class:`~allennlp.models.Model` subclasses that can act as teachers.

    * ``labels`` / ``label_namespace``: the label strings its targets are indexed by (the student's
      labels are matched to them by string);
    * :attr:`reads_pos`: whether it reads the sentence's PoS tags besides its words (then they are
      part of its input: needed at annotation and prediction, and part of the cache key);
    * :meth:`teacher_outputs`: the targets of a KD objective for a batch.
    """

    labels: List[str]
    label_namespace: str

    @property
    def reads_pos(self) -> bool:
        return False

    def teacher_outputs(self, objective, **tensors) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor], torch.Tensor]:
        """
        ``(targets, best labels (B, n) or None, word mask (B, n))`` under ``torch.no_grad()``:
        ``targets`` what ``objective`` needs (see :mod:`allennlp_structkd.kd.targets`), with the
        objective's temperature applied; the best labels are pseudo gold for unlabeled sentences
        (a parser gives its best tree as ``pseudo_heads``/``pseudo_deprels`` targets instead).
        """
        raise NotImplementedError

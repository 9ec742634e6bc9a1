"""The field that carries a teacher's targets for one sentence, from the teacher's label order into the student's."""
from typing import Dict, List, Optional

import numpy as np
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Field, Vocabulary

from allennlp_structkd.kd.losses import check_label_sets
from allennlp_structkd.kd.targets import spec_of, to_student_order


class TeacherTargetsField(Field[Dict[str, torch.Tensor]]):
    """
    What a teacher computed for one sentence (``teacher_unary``, ``teacher_pairwise``, ...), in the
    teacher's label order until indexing (then in the student's), plus the teacher's labels *by string*.

    * Counting vocabulary items adds the teacher's labels to the student's label namespace, so a
      student trained only on unlabeled data still has every label.
    * Indexing moves every target into the student's label order, once per instance rather than
      once per batch: labels of the student that this teacher lacks get probability 0. A student
      vocabulary that lacks a teacher label, or has a label no teacher has, is a clear error naming
      the labels (:func:`~allennlp_structkd.kd.losses.check_label_sets`).
    * Batching pads the token dimension and gives the model a dict of tensors.
    """

    __slots__ = ["targets", "labels", "all_teacher_labels", "namespace", "_indexed"]

    def __init__(self, targets: Dict[str, np.ndarray], labels: List[str], all_teacher_labels: List[str],
                 namespace: str = "labels") -> None:
        self.targets = targets
        self.labels = list(labels)
        self.all_teacher_labels = all_teacher_labels
        self.namespace = namespace
        self._indexed: Optional[bool] = None  # True once the targets are in the student's label order

    def count_vocab_items(self, counter: Dict[str, Dict[str, int]]) -> None:
        for label in self.labels:
            counter[self.namespace][label] += 1

    def index(self, vocab: Vocabulary) -> None:
        if self._indexed is not None:
            return
        known = vocab.get_token_to_index_vocabulary(self.namespace)
        check_label_sets(list(known), self.all_teacher_labels)
        label_map = np.array([known[label] for label in self.labels], dtype=np.int64)
        # the teacher-order arrays are replaced, not kept beside: pair marginals are large
        self.targets = {name: to_student_order(name, value, label_map, len(known)) for name, value in self.targets.items()}
        self._indexed = True

    def get_padding_lengths(self) -> Dict[str, int]:
        lengths = {}
        for name, value in self.targets.items():
            for dim, extra in spec_of(name).word_dims:
                lengths["num_tokens"] = value.shape[dim] - extra
        return lengths

    def as_tensor(self, padding_lengths: Dict[str, int]) -> Dict[str, torch.Tensor]:
        if self._indexed is None:
            raise ConfigurationError("TeacherTargetsField used before indexing")
        tensors = {}
        for name, value in self.targets.items():
            tensor = torch.from_numpy(value)
            pad = [0, 0] * tensor.dim()
            for dim, extra in spec_of(name).word_dims:
                missing = padding_lengths.get("num_tokens", 0) + extra - tensor.size(dim)
                pad[2 * (tensor.dim() - 1 - dim) + 1] = max(missing, 0)
            tensors[name] = torch.nn.functional.pad(tensor, pad) if any(pad) else tensor
        return tensors

    def batch_tensors(self, tensor_list: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        return {name: torch.stack([t[name] for t in tensor_list]) for name in tensor_list[0]}

    def empty_field(self) -> "TeacherTargetsField":
        return TeacherTargetsField({}, [], self.all_teacher_labels, self.namespace)

    def __len__(self) -> int:
        return len(self.targets)

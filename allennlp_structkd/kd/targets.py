"""
What each teacher target looks like, described once: which dimensions run over the words (trimmed
to a sentence, padded in a batch) and which over labels (moved into the student's label order).
Shapes are given per sentence, without the batch dimension. And the recipes: what an objective asks of
its teacher (``KDLoss.recipe``), and what a teacher can give (``TeacherDistribution.gives()`` of its structure).
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple, Union

import numpy as np
import torch


@dataclass(frozen=True)
class TargetSpec:
    """
    # Parameters

    word_dims : `Tuple[Tuple[int, int], ...]`
        ``(dimension, extra positions)`` of each dimension over the words (a parser's head
        dimension also has the root: one extra).
    label_dims : `Union[Tuple[int, ...], str]`
        The dimensions over the teacher's labels, or ``"values"``: the entries are label ids.
    pseudo : `bool`
        A placeholder label sequence for unlabeled sentences, never a KD target.
    shared : `bool`
        The same for every sentence of a teacher (its transitions): the cache keeps it once.
    """

    word_dims: Tuple[Tuple[int, int], ...] = ()
    label_dims: Union[Tuple[int, ...], str] = ()
    pseudo: bool = False
    shared: bool = False  # the same for every sentence of a teacher (stored once per teacher, not per sentence)


# Recipes. A teacher teaches an objective whose recipe it names; a new kind of teacher or objective
# says which of these it gives or asks for, and nothing else needs editing.
POTENTIALS = "potentials"
"""Targets computed from the teacher's own scores for the student's structure (chain or token
potentials: k-best sequences, token softmax, emissions, ...): the taggers."""
UNARY_MARGINALS = "unary_marginals"
"""Each position's marginal distribution (labels, or heads and deprels), whatever the structure
behind it: every structured teacher (Wang et al. 2021's factorised objective)."""
ONE_BEST = "one_best"
"""The teacher's best structure, one-hot (Top-1 pseudo labels)."""
RECIPES = (POTENTIALS, UNARY_MARGINALS, ONE_BEST)


WORDS = ((0, 0),)
TARGETS: Dict[str, TargetSpec] = {
    "teacher_unary": TargetSpec(WORDS, (1,)),  # (n, L) label marginals
    "teacher_pairwise": TargetSpec(WORDS, (1, 2)),  # (n, L, L) adjacent-pair marginals
    "teacher_probs": TargetSpec(WORDS, (1,)),  # (n, L) per-token softmax (token / emission KD)
    "teacher_kbest_tags": TargetSpec(((1, 0),), "values"),  # (k, n) label ids of the k best sequences
    "teacher_kbest_weights": TargetSpec(),  # (k,)
    "teacher_head_probs": TargetSpec(((0, 0), (1, 1))),  # (n, n + 1) over head positions, root at 0
    "teacher_deprel_probs": TargetSpec(WORDS, (1,)),  # (n, R) over the teacher's deprels
    "teacher_logits": TargetSpec(WORDS, (1,)),  # (n, L)
    "teacher_hidden": TargetSpec(WORDS),  # (n, H)
    # the storage form of a chain teacher's Structural KD targets (what the cache keeps: the marginals are recomputed
    # from these, batched, when read; see expand_entries): its constrained scores, in its label order
    "teacher_emissions": TargetSpec(WORDS, (1,)),  # (n, L)
    "teacher_transitions": TargetSpec((), (0, 1), shared=True),  # (L, L), -inf where forbidden
    "teacher_start": TargetSpec((), (0,), shared=True),  # (L,)
    "teacher_end": TargetSpec((), (0,), shared=True),  # (L,)
    "pseudo_tags": TargetSpec(WORDS, pseudo=True),  # (n,) the teacher's best labels
    "pseudo_heads": TargetSpec(WORDS, pseudo=True),  # (n,) its best tree
    "pseudo_deprels": TargetSpec(WORDS, pseudo=True),  # (n,)
}


def spec_of(name: str) -> TargetSpec:
    """The spec of a target name; an unknown name is an error (an empty spec would mean no trimming, no padding and
    no label reordering, silently): a new target kind is added to ``TARGETS`` with its spec."""
    if name not in TARGETS:
        raise KeyError(f"teacher target {name!r} has no spec: add it to allennlp_structkd.kd.targets.TARGETS "
                       f"(known: {', '.join(sorted(TARGETS))})")
    return TARGETS[name]


def trim_to_length(name: str, value: torch.Tensor, length: int) -> torch.Tensor:
    """One sentence's target tensor without the batch's padding."""
    for dim, extra in spec_of(name).word_dims:
        value = value.narrow(dim, 0, length + extra)
    return value


def to_student_order(name: str, value: np.ndarray, label_map: np.ndarray, num_student: int) -> np.ndarray:
    """One sentence's target from teacher label order into the student's (``label_map[j]``: student id of teacher label j)."""
    dims = spec_of(name).label_dims
    if isinstance(dims, str):  # "values": the target holds label ids
        return label_map[value]
    for axis in dims:
        shape = list(value.shape)
        shape[axis] = num_student
        moved = np.zeros(shape, dtype=value.dtype)
        index: List[Any] = [slice(None)] * value.ndim
        index[axis] = label_map
        moved[tuple(index)] = value
        value = moved
    return np.ascontiguousarray(value)


def split_shared(entries: List[Dict[str, np.ndarray]]) -> Tuple[List[Dict[str, np.ndarray]], Dict[str, np.ndarray]]:
    """``(entries without their shared targets, the shared targets)``: what the cache keeps per sentence, and once per
    teacher (every entry of one teacher and objective holds the same shared targets)."""
    shared: Dict[str, np.ndarray] = {}
    for entry in entries[:1]:
        shared = {name: value for name, value in entry.items() if spec_of(name).shared}
    return [{name: value for name, value in entry.items() if not spec_of(name).shared} for entry in entries], shared


def expand_entries(objective: Any, entries: List[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
    """
    The targets a student trains with, from entries in an objective's storage form (``objective.storage_targets``):
    those holding ``teacher_emissions`` (with their teacher's shared targets) are expanded by
    ``objective.expand_targets`` in one padded batch; the others, and every pseudo label, are kept as they are. All
    the entries are of one teacher (the same shared targets).
    """
    stored = [k for k, entry in enumerate(entries) if "teacher_emissions" in entry]
    if not stored:
        return entries
    lengths = [entries[k]["teacher_emissions"].shape[0] for k in stored]
    labels = entries[stored[0]]["teacher_emissions"].shape[1]
    emissions = torch.zeros(len(stored), max(lengths + [1]), labels)
    mask = torch.zeros(len(stored), emissions.size(1), dtype=torch.bool)
    for row, (k, length) in enumerate(zip(stored, lengths)):
        emissions[row, :length] = torch.from_numpy(entries[k]["teacher_emissions"])
        mask[row, :length] = True
    batch = {"teacher_emissions": emissions}
    for name, value in entries[stored[0]].items():
        if spec_of(name).shared:
            batch[name] = torch.from_numpy(value)
    with torch.no_grad():
        targets = objective.expand_targets(batch, mask)
    expanded = list(entries)
    for row, (k, length) in enumerate(zip(stored, lengths)):
        kept = {name: value for name, value in entries[k].items() if spec_of(name).pseudo}
        expanded[k] = {**{name: trim_to_length(name, value[row], length).numpy() for name, value in targets.items()}, **kept}
    return expanded

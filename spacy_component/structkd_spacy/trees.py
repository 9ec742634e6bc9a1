"""
Heads from a sequence-labeling parser's labels (Strzyz et al. 2019's relative-PoS encoding, as
``allennlp_structkd.structures.rel_pos`` decodes them), repaired into a tree where they are none:
the maximum spanning tree over the parser's own head distribution. This is the one copy of both: the
library's ``allennlp_structkd.structures.rel_pos`` and its sequence-labeling parser import them (this package
serves without allennlp_structkd, never the other way round).
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy

from structkd_spacy.mst import decode_mst

ROOT_POS = "ROOT"
_LABEL = re.compile(r"^([+-]\d+)@(.+)$")


def split_label(label: str) -> Tuple[str, Optional[str]]:
    """``"+1@NOUN@nsubj"`` -> ``("+1@NOUN", "nsubj")``; ``"+1@NN"`` (no deprel) -> ``("+1@NN", None)``."""
    head_part, _, deprel = label.rpartition("@")
    if parse_label(head_part) is None:
        return label, None
    return head_part, deprel


def parse_label(label: str) -> Optional[Tuple[int, str]]:
    match = _LABEL.match(label)
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)), match.group(2)


def decode(labels: Sequence[str], pos_tags: Sequence[str]) -> List[int]:
    """Heads (0 = root) of relative-PoS head parts: the farthest word of the PoS in the label's direction when the
    offset overshoots, else the nearest in the other direction, else the root."""
    tags = [ROOT_POS] + list(pos_tags)
    heads = []
    for k, label in enumerate(labels):
        i = k + 1
        parsed = parse_label(label)
        if parsed is None:
            heads.append(0)
            continue
        offset, target = parsed
        right = [j for j in range(i + 1, len(tags)) if tags[j] == target]
        left = [j for j in range(i - 1, -1, -1) if tags[j] == target]
        forward, backward = (right, left) if offset > 0 else (left, right)
        heads.append(forward[min(abs(offset), len(forward)) - 1] if forward else (backward[0] if backward else 0))
    return heads


def is_tree(heads: Sequence[int]) -> bool:
    for start in range(1, len(heads) + 1):
        seen, node = set(), start
        while node != 0:
            if node in seen or not 0 <= node <= len(heads):
                return False
            seen.add(node)
            node = heads[node - 1]
    return True


def parse(label_probs: numpy.ndarray, predicted: List[int], labels: List[str], pos_tags: List[str]) -> Tuple[List[int], List[str]]:
    """``(heads, deprels)`` of one sentence: its predicted labels' heads, or where they are no tree the best tree
    over its label distribution ``label_probs`` ``(n, L)``, each word whose head changes taking its most probable
    deprel among the labels that decode to the new head."""
    chosen = [split_label(labels[t]) for t in predicted]
    heads = decode([part for part, _ in chosen], pos_tags)
    deprels = [deprel or "_" for _, deprel in chosen]
    if is_tree(heads):  # most sentences: only their own labels are read
        return heads, deprels
    label_probs = numpy.asarray(label_probs, dtype=numpy.float32)
    split = [split_label(label) for label in labels]
    parts = [part for part, _ in split]
    n = len(pos_tags)
    decoded: Dict[str, List[int]] = {part: decode([part] * n, pos_tags) for part in set(parts)}
    table = numpy.array([decoded[part] for part in parts], dtype=numpy.int64)  # (L, n): each label's head of each word
    distribution = numpy.zeros((n, n + 1), dtype=numpy.float32)  # P(head of word i = j)
    numpy.add.at(distribution, (numpy.arange(n)[:, None], table.T), label_probs[:n])
    scores = numpy.full((n + 1, n + 1), -1e4, dtype=numpy.float32)
    scores[1:] = numpy.log(numpy.maximum(distribution, 1e-12))
    scores[numpy.arange(1, n + 1), numpy.arange(1, n + 1)] = -1e4
    shifted = scores - scores.max(axis=1, keepdims=True)  # a row-wise softmax, as the training code's mst_heads
    energy = (numpy.exp(shifted) / numpy.exp(shifted).sum(axis=1, keepdims=True)).T  # [head, dependent]
    tree, _ = decode_mst(numpy.ascontiguousarray(energy), n + 1, has_labels=False)
    repaired = [int(h) for h in tree[1 : n + 1]]
    for i, (old, new) in enumerate(zip(heads, repaired)):
        if old != new:
            fits = [label for label, part in enumerate(parts) if decoded[part][i] == new]
            if fits:
                deprels[i] = split[max(fits, key=lambda label: float(label_probs[i, label]))][1] or "_"
    return repaired, deprels

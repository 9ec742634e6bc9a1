"""
The relative-PoS head encoding of Strzyz et al. (2019), "Viable Dependency Parsing as Sequence
Labeling".

Word ``i`` (1-based; position 0 is the root) whose head is ``h`` gets the label ``"{o:+d}@{P}"``
where ``P`` is the PoS of the head and ``o`` says which word of that PoS it is, counting from
``i``: ``+1`` the first word tagged ``P`` to the right, ``-2`` the second one to the left. The root
has the PoS ``ROOT`` and stands left of every word, so a word headed by the root gets ``-1@ROOT``.

Decoding a label that names no existing word (``+3@NOUN`` with only two nouns to the right) uses
this fallback, chosen to keep as much of the label as possible:

1. the farthest word of PoS ``P`` in the label's direction (the offset is clipped), else
2. the nearest word of PoS ``P`` in the other direction, else
3. the root.

Labels that do not parse at all (e.g. ``"garbage"``) also go to the root. Decoded heads may form
cycles or several roots; a parser repairs them into a tree with the maximum spanning tree over
its own head distribution (:func:`head_distribution`: each label's probability goes to the head
that label decodes to), so that no cycle reaches a user.

Batched helpers (:func:`relative_offsets`, :func:`head_distribution_to_labels`) work on tensors.
Decoding a label and checking a tree are the serving package's (``structkd_spacy.trees``, installed
beside the library): one copy, which a served parser and training share.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from structkd_spacy import trees as serving_trees
from structkd_spacy.trees import ROOT_POS

__all__ = [
    "ROOT_POS",
    "encode",
    "decode",
    "head_distribution",
    "is_tree",
    "parse_label",
    "relative_offsets",
    "head_distribution_to_labels",
]


def _positions_by_pos(pos_tags: Sequence[str]) -> List[str]:
    return [ROOT_POS] + list(pos_tags)


def encode(heads: Sequence[int], pos_tags: Sequence[str]) -> List[str]:
    """
    ``heads[k]`` is the head of word ``k + 1`` (0 = root), ``pos_tags[k]`` its PoS; returns one label
    per word.
    """
    if len(heads) != len(pos_tags):
        raise ValueError(f"{len(heads)} heads but {len(pos_tags)} PoS tags")
    tags = _positions_by_pos(pos_tags)
    n = len(tags)
    labels = []
    for k, head in enumerate(heads):
        i = k + 1
        if not 0 <= head < n:
            raise ValueError(f"head {head} of word {i} is out of range 0..{n - 1}")
        if head == i:
            raise ValueError(f"word {i} is its own head")
        target = tags[head]
        if head > i:
            offset = sum(1 for j in range(i + 1, head + 1) if tags[j] == target)
        else:
            offset = -sum(1 for j in range(head, i) if tags[j] == target)
        labels.append(f"{offset:+d}@{target}")
    return labels


def parse_label(label: str) -> Optional[Tuple[int, str]]:
    """``"+1@NOUN"`` -> ``(1, "NOUN")``; None when the label is not of that form (or offset 0)."""
    return serving_trees.parse_label(label)


def decode(labels: Sequence[str], pos_tags: Sequence[str]) -> List[int]:
    """Heads (0 = root) from labels, with the fallback of the module docstring."""
    if len(labels) != len(pos_tags):
        raise ValueError(f"{len(labels)} labels but {len(pos_tags)} PoS tags")
    return serving_trees.decode(labels, pos_tags)


def is_tree(heads: Sequence[int]) -> bool:
    """Whether ``heads`` (``heads[k]`` the head of word ``k + 1``, 0 the root) form one tree: every word
    reaches the root, no cycle."""
    return serving_trees.is_tree(heads)


def head_distribution(label_probs: torch.Tensor, head_parts: Sequence[str], pos_tags: Sequence[str],
                      decoded: Optional[Dict[str, List[int]]] = None) -> torch.Tensor:
    """
    Each word's distribution over heads ``(n, n + 1)`` (root at 0) from its distribution over labels
    ``label_probs`` ``(n, L)``: a label's probability goes to the head it decodes to at that word
    (:func:`decode`, with its fallback), ``head_parts[l]`` being label ``l``'s head part (``"+1@NOUN"``).
    ``decoded``: each head part's head at every word, when the caller has it already.
    """
    n = len(pos_tags)
    if decoded is None:
        decoded = {part: decode([part] * n, pos_tags) for part in set(head_parts)}
    heads = torch.tensor([decoded[part] for part in head_parts], dtype=torch.long, device=label_probs.device)  # (L, n)
    distribution = label_probs.new_zeros(n, n + 1)
    return distribution.scatter_add_(1, heads.t(), label_probs[:n])


def relative_offsets(pos_ids: torch.Tensor, mask: torch.Tensor, num_pos: int) -> torch.Tensor:
    """
    For every ``[dependent m, head h]`` pair the offset ``o`` of the label ``o@PoS(h)``, batched.

    ``pos_ids``: ``(B, n)`` long with the root at position 0 (give it its own id, e.g. that of
    ``ROOT``); ``mask``: ``(B, n)`` bool (root and words). Returns ``(B, n, n)`` long, 0 on the
    diagonal and where either position is padding.
    """
    batch, n = pos_ids.shape
    mask = mask.bool()
    one_hot = torch.nn.functional.one_hot(pos_ids.clamp(min=0), num_pos) * mask.unsqueeze(2).long()
    counts = one_hot.cumsum(dim=1)  # counts[b, t, p] = # positions <= t with PoS p
    counts = torch.cat([counts.new_zeros(batch, 1, num_pos), counts], dim=1)  # shifted: [t + 1]
    head_pos = pos_ids.clamp(min=0).view(batch, 1, n).expand(batch, n, n)
    # count_upto[b, x, h] = # positions <= x with PoS(h); evaluate at x = m, h, m - 1, h - 1
    def count_upto(index):  # index (B, n, n) of positions, -1 allowed
        gathered = counts.gather(1, (index + 1).reshape(batch, n * n, 1).expand(-1, -1, num_pos))
        return gathered.reshape(batch, n, n, num_pos).gather(3, head_pos.unsqueeze(3)).squeeze(3)

    m_index = torch.arange(n, device=pos_ids.device).view(1, n, 1).expand(batch, n, n)
    h_index = torch.arange(n, device=pos_ids.device).view(1, 1, n).expand(batch, n, n)
    right = count_upto(h_index) - count_upto(m_index)  # m < h: # in (m, h]
    left = -(count_upto(m_index - 1) - count_upto(h_index - 1))  # h < m: # in [h, m)
    offsets = torch.where(h_index > m_index, right, left)
    valid = mask.unsqueeze(2) & mask.unsqueeze(1) & (h_index != m_index)
    return offsets.masked_fill(~valid, 0)


def label_table(
    label_vocab: Dict[str, int], pos_vocab: Dict[str, int], max_offset: int
) -> torch.Tensor:
    """
    ``(2 * max_offset + 1, num_pos)`` long: the id in ``label_vocab`` of ``o@P`` at
    ``[o + max_offset, pos_vocab[P]]``, or -1 where ``label_vocab`` lacks that label.
    """
    table = torch.full((2 * max_offset + 1, len(pos_vocab)), -1, dtype=torch.long)
    for label, index in label_vocab.items():
        parsed = parse_label(label)
        if parsed is None or abs(parsed[0]) > max_offset or parsed[1] not in pos_vocab:
            continue
        table[parsed[0] + max_offset, pos_vocab[parsed[1]]] = index
    return table


def head_distribution_to_labels(
    head_probs: torch.Tensor,
    pos_ids: torch.Tensor,
    mask: torch.Tensor,
    table: torch.Tensor,
    num_labels: int,
    unknown_index: Optional[int] = None,
) -> torch.Tensor:
    """
    Map ``P(head = h | m)`` ``(B, n, n)`` onto the relative-PoS labels: ``(B, n, num_labels)`` with
    ``P(label = l | m) = sum_h P(h | m) [encode(m, h) = l]``.

    ``table`` comes from :func:`label_table`. Heads whose label is not in the vocabulary (offsets
    beyond the table, unseen labels) send their mass to ``unknown_index``, or, when that is None,
    are dropped and each row renormalised so that it still sums to one.
    """
    max_offset = (table.size(0) - 1) // 2
    offsets = relative_offsets(pos_ids, mask, table.size(1))
    batch, n = pos_ids.shape
    head_pos = pos_ids.clamp(min=0).view(batch, 1, n).expand(batch, n, n)
    in_range = offsets.abs() <= max_offset
    ids = table.to(pos_ids.device)[(offsets.clamp(-max_offset, max_offset) + max_offset), head_pos]
    ids = torch.where(in_range, ids, torch.full_like(ids, -1))
    known = ids >= 0
    if unknown_index is not None:
        ids = torch.where(known, ids, torch.full_like(ids, unknown_index))
        known = torch.ones_like(known)
    probs = head_probs * known.to(head_probs.dtype)
    result = head_probs.new_zeros(batch, n, num_labels)
    result.scatter_add_(2, ids.clamp(min=0), probs)
    if unknown_index is None:
        total = result.sum(2, keepdim=True)
        result = torch.where(total > 0, result / total.clamp(min=1e-30), result)
    return result

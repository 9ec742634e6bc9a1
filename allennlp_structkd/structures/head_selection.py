"""
Head selection for biaffine dependency parsers (Dozat & Manning 2017), exact and batched.

Conventions shared with :mod:`allennlp_structkd.structures.second_order`:

* position 0 is the artificial root; words are positions ``1..len``;
* ``arc_scores``: ``(B, n, n)`` indexed ``[dependent, head]``;
* ``label_scores``: ``(B, n, n, R)`` indexed ``[dependent, head, label]``;
* ``mask``: ``(B, n)`` bool, True for the root **and** the words, True entries first.

Each word independently picks one head among the root and the other words (no self-loops);
the root picks none. Rows of the root and of padding are all zero in every result.
"""
from dataclasses import dataclass

import torch

from allennlp_structkd.structures.distribution import Marginals, StructuredDistribution

__all__ = ["HeadSelection", "arc_mask", "head_log_probs", "head_marginals", "label_marginals", "labels_given_heads", "head_label_marginals"]


def arc_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, n, n)`` bool: which ``[dependent, head]`` pairs are possible arcs."""
    mask = mask.bool()
    n = mask.size(1)
    words = mask.clone()
    words[:, 0] = False
    no_self = ~torch.eye(n, dtype=torch.bool, device=mask.device)
    return words.unsqueeze(2) & mask.unsqueeze(1) & no_self.unsqueeze(0)


def head_log_probs(arc_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log P(head = h | dependent = m)`` ``(B, n, n)``, ``-inf`` where no arc is possible."""
    if arc_scores.dim() != 3 or arc_scores.size(1) != arc_scores.size(2):
        raise ValueError(f"arc_scores must be (B, n, n), got shape {tuple(arc_scores.shape)}")
    if mask.shape != arc_scores.shape[:2]:
        raise ValueError(f"mask must be {tuple(arc_scores.shape[:2])}, got {tuple(mask.shape)}")
    possible = arc_mask(mask)
    # a large finite score for impossible arcs: rows with no possible head (root, padding) stay
    # finite (no NaN, in values or gradients) until they are set to -inf at the end
    log_probs = arc_scores.masked_fill(~possible, -1e30).log_softmax(dim=2)
    return log_probs.masked_fill(~possible, float("-inf"))


def head_marginals(arc_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``P(head = h | dependent = m)`` ``(B, n, n)``; each word's row sums to 1."""
    return head_log_probs(arc_scores, mask).exp()


def label_marginals(
    arc_scores: torch.Tensor, label_scores: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """
    ``P(label = r | dependent = m)`` ``(B, n, R)``, summing over heads:
    ``sum_h P(h | m) * softmax_r(label_scores[m, h])[r]``.
    """
    return labels_given_heads(head_marginals(arc_scores, mask), label_scores.softmax(dim=3))


def labels_given_heads(head_probs: torch.Tensor, label_probs: torch.Tensor) -> torch.Tensor:
    """``P(r | m) = sum_h P(h | m) P(r | m, h)`` ``(B, n, R)`` of any head distribution ``(B, n, n)`` (first order,
    or a second-order parser's mean-field one) and label distributions ``(B, n, n, R)``."""
    return torch.einsum("bmh,bmhr->bmr", head_probs, label_probs)


def head_label_marginals(
    arc_scores: torch.Tensor, label_scores: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``P(head = h, label = r | m)`` ``(B, n, n, R)`` = ``P(h | m) * P(r | m, h)``."""
    heads = head_marginals(arc_scores, mask)
    labels = label_scores.log_softmax(dim=3).exp()
    return heads.unsqueeze(3) * labels


@dataclass
class HeadSelection(StructuredDistribution):
    """
    Each word's head chosen on its own among the root and the other words (Dozat & Manning's head selection), as a
    :class:`~allennlp_structkd.structures.distribution.StructuredDistribution`: ``arc_scores`` ``(B, n, n)``
    ``[dependent, head]`` and ``mask`` ``(B, n)`` (the root and the words), as this module's functions take them.
    Marginals: ``unary`` ``(B, n, n)``, ``P(head = h | m)``; argmax: each word's best head ``(B, n)`` (0 for the root
    and padding), which need not form a tree (:func:`~allennlp_structkd.structures.mst.mst_heads` finds the best
    tree); no k-best. A parser's labels are a distribution per arc of their own (:func:`labels_given_heads`).
    """

    arc_scores: torch.Tensor
    mask: torch.Tensor

    def log_partition(self) -> torch.Tensor:
        possible = arc_mask(self.mask)
        rows = self.arc_scores.masked_fill(~possible, float("-inf")).logsumexp(dim=2)
        return torch.where(possible.any(dim=2), rows, torch.zeros_like(rows)).sum(1)  # the root and padding add 0

    def marginals(self) -> Marginals:
        return Marginals(head_marginals(self.arc_scores, self.mask))

    def argmax(self) -> torch.Tensor:
        possible = arc_mask(self.mask)
        return self.arc_scores.masked_fill(~possible, float("-inf")).argmax(dim=2) * possible.any(dim=2).long()

    def scaled(self, factor: float) -> "HeadSelection":
        return HeadSelection(self.arc_scores * factor, self.mask)

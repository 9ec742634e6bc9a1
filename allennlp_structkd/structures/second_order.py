"""
Second-order dependency parsing by mean-field variational inference (Wang & Tu 2020).

Conventions of :mod:`allennlp_structkd.structures.head_selection` (root at 0, ``[dependent, head]``),
plus two second-order score tensors, both ``(B, n, n, n)``:

* ``sibling_scores[b, m, h, s]``: arcs ``h -> m`` and ``h -> s`` both present (``s != m``);
* ``grandparent_scores[b, m, h, g]``: arcs ``g -> h`` and ``h -> m`` both present.

With ``z[m, h] = 1`` when ``h`` heads ``m`` (one head per word), the energy is::

    E(z) = sum_{m,h} arc[m,h] z[m,h]
         + sum_{h, m != s} sib[m,h,s] z[m,h] z[s,h]
         + sum_{m,h,g} grd[m,h,g] z[m,h] z[h,g]

Mean field keeps one categorical ``q[m, :]`` over heads per word and iterates
``q[m, :] = softmax_h(dE/dz[m, h] evaluated at z = q)``, i.e. the update logits are::

    arc[m,h] + sum_{s != m,h} (sib[m,h,s] + sib[s,h,m]) q[s,h]
             + sum_g grd[m,h,g] q[h,g] + sum_c grd[c,m,h] q[c,m]

Impossible arcs (self-loops, the root as dependent, padding) have ``q = 0``, which also removes
every second-order term that involves them. ``iterations = 0`` gives the first-order head-selection
marginals; zero second-order scores give them at any number of iterations.
"""
from dataclasses import dataclass
from typing import Optional

import torch

from allennlp_structkd.structures.distribution import Marginals, StructuredDistribution
from allennlp_structkd.structures.head_selection import arc_mask

__all__ = ["SecondOrderMeanField", "mfvi_logits", "mfvi_marginals", "expected_energy"]

NEG = -1e30


def _second_order_mask(possible: torch.Tensor) -> torch.Tensor:
    """``(B, n, n, n)``: ``[m, h, x]`` with both ``h -> m`` and the partner arc possible, x != m."""
    n = possible.size(1)
    distinct = ~torch.eye(n, dtype=torch.bool, device=possible.device)
    return possible.unsqueeze(3) & distinct.unsqueeze(1).unsqueeze(0)


def _update_logits(q, arc_scores, sibling, grandparent):
    logits = arc_scores
    if sibling is not None:
        # message from sibling factors: sum_s (sib[m,h,s] + sib[s,h,m]) q[s,h]
        q_heads = q.transpose(1, 2)  # [h, s] = q[s, h]
        sym = sibling + sibling.permute(0, 3, 2, 1)  # [m,h,s] + [s,h,m]
        logits = logits + torch.einsum("bmhs,bhs->bmh", sym, q_heads)
    if grandparent is not None:
        # as the lower arc h -> m of g -> h -> m: sum_g grd[m,h,g] q[h,g]
        logits = logits + torch.einsum("bmhg,bhg->bmh", grandparent, q)
        # as the upper arc h -> m of h -> m -> c: sum_c grd[c,m,h] q[c,m]
        logits = logits + torch.einsum("bcmh,bcm->bmh", grandparent, q)
    return logits


def mfvi_logits(
    arc_scores: torch.Tensor,
    mask: torch.Tensor,
    sibling_scores: Optional[torch.Tensor] = None,
    grandparent_scores: Optional[torch.Tensor] = None,
    iterations: int = 3,
) -> torch.Tensor:
    """
    The logits of the mean-field posteriors after ``iterations`` updates, ``(B, n, n)``
    (``-inf`` where no arc is possible; root and padding rows all ``-inf``).
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    possible = arc_mask(mask)
    second = _second_order_mask(possible)
    sibling = None if sibling_scores is None else sibling_scores * second.to(sibling_scores.dtype)
    grandparent = None if grandparent_scores is None else grandparent_scores * second.to(grandparent_scores.dtype)
    # impossible arcs are NEG inside the loop (finite: no NaN in softmax or its gradient for rows
    # with no possible head), -inf in the result
    logits = arc_scores.masked_fill(~possible, NEG)
    for _ in range(iterations):
        q = logits.softmax(dim=2).masked_fill(~possible, 0.0)
        logits = _update_logits(q, arc_scores, sibling, grandparent).masked_fill(~possible, NEG)
    return logits.masked_fill(~possible, float("-inf"))


def mfvi_marginals(
    arc_scores: torch.Tensor,
    mask: torch.Tensor,
    sibling_scores: Optional[torch.Tensor] = None,
    grandparent_scores: Optional[torch.Tensor] = None,
    iterations: int = 3,
) -> torch.Tensor:
    """Approximate arc marginals ``q[b, m, h]`` ``(B, n, n)``: each word's row sums to 1, others 0."""
    logits = mfvi_logits(arc_scores, mask, sibling_scores, grandparent_scores, iterations)
    possible = arc_mask(mask)
    return logits.masked_fill(~possible, NEG).softmax(dim=2).masked_fill(~possible, 0.0)


def expected_energy(
    q: torch.Tensor,
    arc_scores: torch.Tensor,
    mask: torch.Tensor,
    sibling_scores: Optional[torch.Tensor] = None,
    grandparent_scores: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``E_q[E(z)]`` ``(B,)`` for factorized ``q`` (the energy written out term by term)."""
    possible = arc_mask(mask)
    q = q.masked_fill(~possible, 0.0)
    energy = (arc_scores.masked_fill(~possible, 0.0) * q).sum((1, 2))
    second = _second_order_mask(possible).to(q.dtype)
    if sibling_scores is not None:
        energy = energy + torch.einsum("bmhs,bmh,bsh->b", sibling_scores * second, q, q)
    if grandparent_scores is not None:
        energy = energy + torch.einsum("bmhg,bmh,bhg->b", grandparent_scores * second, q, q)
    return energy


@dataclass
class SecondOrderMeanField(StructuredDistribution):
    """
    A second-order parser's distribution, approximated by mean field (this module's conventions): ``arc_scores``
    ``(B, n, n)``, ``mask`` ``(B, n)``, optional ``sibling_scores`` and ``grandparent_scores`` ``(B, n, n, n)``,
    ``iterations`` updates. Marginals: ``unary`` ``(B, n, n)``, the mean-field head posteriors ``q``; argmax: each
    word's most probable head under ``q`` ``(B, n)``; log partition: mean field's lower bound on it,
    ``E_q[E(z)] + H(q)`` (exact without second-order scores, where ``q`` is the head-selection posterior); no k-best.
    """

    arc_scores: torch.Tensor
    mask: torch.Tensor
    sibling_scores: Optional[torch.Tensor] = None
    grandparent_scores: Optional[torch.Tensor] = None
    iterations: int = 3

    def marginals(self) -> Marginals:
        return Marginals(mfvi_marginals(self.arc_scores, self.mask, self.sibling_scores, self.grandparent_scores,
                                        self.iterations))

    def log_partition(self) -> torch.Tensor:
        q = self.marginals().unary
        entropy = -(q * q.clamp(min=1e-45).log()).masked_fill(q <= 0, 0.0).sum((1, 2))
        return expected_energy(q, self.arc_scores, self.mask, self.sibling_scores, self.grandparent_scores) + entropy

    def argmax(self) -> torch.Tensor:
        q = self.marginals().unary
        return q.argmax(dim=2) * arc_mask(self.mask).any(dim=2).long()

    def scaled(self, factor: float) -> "SecondOrderMeanField":
        scale = lambda t: None if t is None else t * factor  # noqa: E731
        return SecondOrderMeanField(self.arc_scores * factor, self.mask, scale(self.sibling_scores),
                                    scale(self.grandparent_scores), self.iterations)

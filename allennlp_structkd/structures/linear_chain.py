"""
Exact inference for a linear-chain CRF, batched and in log space.

Conventions shared by every function here:

* ``emissions``: ``(B, n, L)`` float, the score of label ``L`` at each position;
* ``transitions``: ``(L, L)`` float indexed ``[from, to]``;
* ``mask``: ``(B, n)`` bool whose True entries come first in each row (a row may be all False:
  the empty sentence, whose only structure is the empty sequence with score 0);
* ``start`` / ``end``: optional ``(L,)`` scores of the first / last label.

The score of a label sequence ``y`` of length ``m`` is
``start[y0] + sum_i emissions[i, y_i] + sum_{i>=1} transitions[y_{i-1}, y_i] + end[y_{m-1}]``.

Every function loops over positions (``n`` steps) but never over batch elements.
``-inf`` scores (forbidden labels or transitions) are allowed; ``+inf`` and NaN are not.
Half-precision (bf16/fp16) emissions are accepted and accumulated in float32.

On CUDA tensors ``log_partition`` (forward and backward), ``marginals``, ``unary_marginals`` and
``forward_backward`` run fused Triton kernels (:mod:`fused_chain`): one launch per pass instead of
several per position. Two cases stay on the PyTorch path: marginals that must be differentiable
(gradient enabled and a score requiring it: a second derivative of ``log Z``) and more than
``fused_chain.MAX_LABELS`` labels. Both paths give the same numbers to float32 rounding.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from allennlp_structkd.structures import chain_kbest
from allennlp_structkd.structures.distribution import Marginals, StructuredDistribution
from allennlp_structkd.structures.tempering import temper_chain

__all__ = [
    "LinearChain", "sequence_score", "log_partition", "forward_backward", "marginals", "unary_marginals", "viterbi",
    "kbest",
]


def _fused(emissions: torch.Tensor, *scores: Optional[torch.Tensor], differentiable: bool = True):
    """
    The fused-kernel module when it serves this call, else None: CUDA emissions of a supported size,
    Triton importable, and (unless the fused function is ``differentiable``) no gradient asked for.
    """
    if not emissions.is_cuda:
        return None
    if not differentiable and torch.is_grad_enabled():
        if any(t is not None and t.requires_grad for t in (emissions, *scores)):
            return None
    try:
        from allennlp_structkd.structures import fused_chain
    except ImportError:  # no Triton for this platform: the PyTorch path serves
        return None
    return fused_chain if fused_chain.supports(emissions) else None


def _prepare(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor],
    start: Optional[torch.Tensor],
    end: Optional[torch.Tensor],
):
    if emissions.dim() != 3:
        raise ValueError(f"emissions must be (B, n, L), got shape {tuple(emissions.shape)}")
    batch, n, num_labels = emissions.shape
    if transitions.shape != (num_labels, num_labels):
        raise ValueError(
            f"transitions must be ({num_labels}, {num_labels}) to match emissions, "
            f"got {tuple(transitions.shape)}"
        )
    if mask is None:
        mask = emissions.new_ones(batch, n, dtype=torch.bool)
    elif mask.shape != (batch, n):
        raise ValueError(f"mask must be ({batch}, {n}), got {tuple(mask.shape)}")
    mask = mask.bool()
    zeros = emissions.new_zeros(num_labels, dtype=_accumulator(emissions.dtype))
    start = zeros if start is None else start
    end = zeros if end is None else end
    return mask, start, end


def _accumulator(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _upcast(emissions: torch.Tensor) -> torch.Tensor:
    """Half-precision emissions are accumulated in float32 (differentiably)."""
    return emissions.to(_accumulator(emissions.dtype))


def sequence_score(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    tags: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Score of given label sequences ``tags`` ``(B, n)`` -> ``(B,)`` (0 for empty sentences)."""
    mask, start, end = _prepare(emissions, transitions, mask, start, end)
    batch, n, _ = emissions.shape
    if n == 0:
        return emissions.new_zeros(batch)
    tags = tags.long().masked_fill(~mask, 0)
    fmask = mask.to(emissions.dtype)
    unary = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
    score = (unary * fmask).sum(1)
    if n > 1:
        pair = transitions[tags[:, :-1], tags[:, 1:]]
        score = score + (pair * fmask[:, 1:]).sum(1)
    lengths = mask.sum(1)
    nonempty = lengths > 0
    last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    boundary = start[tags[:, 0]] + end[last]
    return score + torch.where(nonempty, boundary, torch.zeros_like(boundary))


def _shift(scores: torch.Tensor) -> torch.Tensor:
    """Per-row maximum of ``(B, L)`` scores, detached (0 for rows with no finite score)."""
    top = scores.detach().amax(dim=1)
    return torch.where(torch.isfinite(top), top, torch.zeros_like(top))


def _forward_scores(emissions, transitions, mask, start):
    """
    Normalised forward scores: ``(alphas (B, n, L), log_norm (B,))``. ``alphas[:, i]`` is the
    prefix scores at i shifted so that their maximum is 0, held constant past the end; ``log_norm``
    sums the shifts up to the last real position, so that ``log Z = log_norm + logsumexp(alphas[last]
    + end)``. Shifting at every step keeps all values near 0, which is what keeps float32 exact enough
    on long sentences. log Z does not depend on the shifts, so they are detached: exact gradients,
    less backward work.
    """
    alpha = start.unsqueeze(0) + emissions[:, 0]
    norm = _shift(alpha)
    log_norm = norm
    alpha = alpha - norm.unsqueeze(1)
    alphas = [alpha]
    for i in range(1, emissions.size(1)):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions.unsqueeze(0), dim=1) + emissions[:, i]
        norm = _shift(step)
        keep = mask[:, i]
        alpha = torch.where(keep.unsqueeze(1), step - norm.unsqueeze(1), alpha)
        log_norm = log_norm + torch.where(keep, norm, torch.zeros_like(norm))
        alphas.append(alpha)
    return torch.stack(alphas, dim=1), log_norm


def _backward_scores(emissions, transitions, mask, end):
    """
    Normalised backward scores ``betas (B, n, L)``: ``betas[:, i]`` is, up to a constant per
    position, the log-sum of all suffixes after position i given the label at i.
    """
    batch, n, num_labels = emissions.shape
    final = end.unsqueeze(0).expand(batch, num_labels)
    beta = final
    betas = [beta]
    for i in range(n - 2, -1, -1):
        step = torch.logsumexp(transitions.unsqueeze(0) + (emissions[:, i + 1] + beta).unsqueeze(1), dim=2)
        step = step - _shift(step).unsqueeze(1)
        # position i is the last one (or padding) when position i + 1 is masked out
        beta = torch.where(mask[:, i + 1].unsqueeze(1), step, final)
        betas.append(beta)
    betas.reverse()
    return torch.stack(betas, dim=1)


def _gather_last(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    lengths = mask.sum(1)
    index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, alphas.size(2))
    return alphas.gather(1, index).squeeze(1)


def log_partition(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``log Z`` ``(B,)``: log-sum-exp of the scores of all label sequences of each sentence."""
    mask, start, end = _prepare(emissions, transitions, mask, start, end)
    batch = emissions.size(0)
    if emissions.size(1) == 0:
        return emissions.new_zeros(batch, dtype=_accumulator(emissions.dtype))
    fused = _fused(emissions)
    if fused is not None:
        return fused.log_partition(emissions, transitions, mask, start, end)
    emissions = _upcast(emissions)
    alphas, log_norm = _forward_scores(emissions, transitions, mask, start)
    log_z = log_norm + torch.logsumexp(_gather_last(alphas, mask) + end.unsqueeze(0), dim=1)
    return torch.where(mask[:, 0], log_z, torch.zeros_like(log_z))


def _unary_scores(emissions, transitions, mask, start, end):
    """``(alphas, betas, log_z, log_unary)`` of checked, upcast, non-empty inputs: the unary half of
    :func:`forward_backward`, which :func:`unary_marginals` uses without building the pairs."""
    alphas, log_norm = _forward_scores(emissions, transitions, mask, start)
    betas = _backward_scores(emissions, transitions, mask, end)
    log_z = log_norm + torch.logsumexp(_gather_last(alphas, mask) + end.unsqueeze(0), dim=1)
    # alphas and betas are normalised per position, so each marginal is normalised locally:
    # sum_a alpha[i, a] beta[i, a] = Z at every i (and likewise for the pairs).
    log_unary = alphas + betas
    log_unary = log_unary - torch.logsumexp(log_unary, dim=2, keepdim=True)
    log_unary = torch.where(mask.unsqueeze(2), log_unary, emissions.new_tensor(float("-inf")))
    return alphas, betas, log_z, log_unary


def forward_backward(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    The log-space quantities behind :func:`marginals`:
    ``(log_z (B,), log_unary (B, n, L), log_pairwise (B, n, L, L))``, the log marginals
    (``-inf`` past each length and at ``log_pairwise[:, 0]``).
    """
    mask, start, end = _prepare(emissions, transitions, mask, start, end)
    batch, n, num_labels = emissions.shape
    if n == 0:
        empty = emissions.new_zeros(batch, 0, num_labels, dtype=_accumulator(emissions.dtype))
        return empty.new_zeros(batch), empty, empty.unsqueeze(-1).expand(-1, -1, -1, num_labels)
    fused = _fused(emissions, transitions, start, end, differentiable=False)
    if fused is not None:
        return fused.forward_backward(emissions, transitions, mask, start, end)
    emissions = _upcast(emissions)
    alphas, betas, log_z, log_unary = _unary_scores(emissions, transitions, mask, start, end)
    neg_inf = emissions.new_tensor(float("-inf"))
    # pairwise[i, a, b] ∝ alpha[i-1, a] + T[a, b] + e[i, b] + beta[i, b]
    log_pair = (
        alphas[:, :-1].unsqueeze(3)
        + transitions.view(1, 1, num_labels, num_labels)
        + (emissions[:, 1:] + betas[:, 1:]).unsqueeze(2)
    )
    log_pair = log_pair - torch.logsumexp(log_pair.flatten(2), dim=2).view(batch, n - 1, 1, 1)
    log_pair = torch.where(mask[:, 1:].view(batch, n - 1, 1, 1), log_pair, neg_inf)
    log_pair = torch.cat([neg_inf.expand(batch, 1, num_labels, num_labels), log_pair], dim=1)
    log_z = torch.where(mask[:, 0], log_z, torch.zeros_like(log_z))
    return log_z, log_unary, log_pair


def marginals(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Exact marginals by the forward-backward algorithm.

    Returns ``(unary (B, n, L), pairwise (B, n, L, L))`` with ``unary[b, i, a] = P(y_i = a)`` and
    ``pairwise[b, i, a, c] = P(y_{i-1} = a, y_i = c)`` for ``i >= 1``; ``pairwise[:, 0] = 0`` and
    both are zero past each sentence's length. Differentiable.
    """
    checked_mask, checked_start, checked_end = _prepare(emissions, transitions, mask, start, end)
    fused = _fused(emissions, transitions, start, end, differentiable=False)
    if fused is not None and emissions.size(1) > 0:
        return fused.marginals(emissions, transitions, checked_mask, checked_start, checked_end)
    _, log_unary, log_pair = forward_backward(emissions, transitions, mask, start, end)
    return log_unary.exp(), log_pair.exp()


def unary_marginals(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``unary (B, n, L)`` of :func:`marginals` alone: the ``(B, n, L, L)`` pairs are never
    materialised. Differentiable on the PyTorch path."""
    mask, start, end = _prepare(emissions, transitions, mask, start, end)
    if emissions.size(1) == 0:
        return emissions.new_zeros(emissions.shape, dtype=_accumulator(emissions.dtype))
    fused = _fused(emissions, transitions, start, end, differentiable=False)
    if fused is not None:
        return fused.marginals(emissions, transitions, mask, start, end, pairwise=False)[0]
    return _unary_scores(_upcast(emissions), transitions, mask, start, end)[3].exp()


def viterbi(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The best label sequence: ``(tags (B, n) long, 0 past each length; scores (B,))``."""
    tags, scores = kbest(emissions, transitions, mask, 1, start, end)
    return tags[:, 0], scores[:, 0]


def kbest(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    k: int = 1,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    The exact ``k`` best label sequences (k-best Viterbi).

    Returns ``(tags (B, k, n) long, scores (B, k))``, scores in descending order, tags 0 past each
    length. Where a sentence has fewer than ``k`` sequences the extra rows score ``-inf`` (their tags
    are arbitrary). Ties are broken arbitrarily but each sequence appears at most once among the
    finite-scored rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    mask, start, end = _prepare(emissions, transitions, mask, start, end)
    return chain_kbest.kbest(_upcast(emissions), transitions, mask, k, start, end)


@dataclass
class LinearChain(StructuredDistribution):
    """
    A linear-chain CRF as one distribution object over label sequences: the conventions of this
    module (``emissions`` ``(B, n, L)``, ``transitions`` ``(L, L)`` ``[from, to]``, ``mask`` ``(B, n)``,
    optional ``start``/``end`` ``(L,)``), and its inference as methods instead of five arguments
    threaded through every call. Marginals: ``unary`` ``(B, n, L)``, ``pairwise`` ``(B, n, L, L)``;
    argmax: the Viterbi tags ``(B, n)``; local temperature: through its Markov factorisation
    (:func:`~allennlp_structkd.structures.tempering.temper_chain`).
    """

    emissions: torch.Tensor
    transitions: torch.Tensor
    mask: Optional[torch.Tensor] = None
    start: Optional[torch.Tensor] = None
    end: Optional[torch.Tensor] = None

    @property
    def _arguments(self):
        return self.emissions, self.transitions, self.mask, self.start, self.end

    def log_partition(self) -> torch.Tensor:
        """``(B,)``"""
        return log_partition(*self._arguments)

    def marginals(self) -> Marginals:
        """``(unary (B, n, L), pairwise (B, n, L, L))``, see :func:`marginals`."""
        return Marginals(*marginals(*self._arguments))

    def argmax(self) -> torch.Tensor:
        """The Viterbi tags ``(B, n)``."""
        return self.viterbi()[0]

    def scaled(self, factor: float) -> "LinearChain":
        scale = lambda t: None if t is None else t * factor  # noqa: E731
        return LinearChain(self.emissions * factor, self.transitions * factor, self.mask, scale(self.start), scale(self.end))

    def locally_tempered(self, temperature: float) -> Marginals:
        unary, pairwise = marginals(*self._arguments)
        mask = self.mask if self.mask is not None else unary.new_ones(unary.shape[:2], dtype=torch.bool)
        return Marginals(*temper_chain(unary, pairwise, mask.bool(), temperature))

    def unary_marginals(self) -> torch.Tensor:
        """``(B, n, L)``, see :func:`unary_marginals`."""
        return unary_marginals(*self._arguments)

    def forward_backward(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_z, log_unary, log_pairwise)``, see :func:`forward_backward`."""
        return forward_backward(*self._arguments)

    def viterbi(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(tags (B, n), scores (B,))``"""
        return viterbi(*self._arguments)

    def kbest(self, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(tags (B, k, n), scores (B, k))``, see :func:`kbest`."""
        emissions, transitions, mask, start, end = self._arguments
        return kbest(emissions, transitions, mask, k, start, end)

    def score(self, tags: torch.Tensor) -> torch.Tensor:
        """The score of label sequences ``tags`` ``(B, n)`` -> ``(B,)``."""
        emissions, transitions, mask, start, end = self._arguments
        return sequence_score(emissions, transitions, tags, mask, start, end)

    def log_prob(self, tags: torch.Tensor) -> torch.Tensor:
        """``log P(tags)`` ``(B,)``."""
        return self.score(tags) - self.log_partition()

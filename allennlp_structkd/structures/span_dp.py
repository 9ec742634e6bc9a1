"""
NER as parsing: exact inference over sets of non-overlapping labeled spans
(Appendix A of Wang et al. 2021, "Structural Knowledge Distillation").

``span_scores`` is ``(B, n, n, C)``: ``[b, i, j, c]`` scores a span of type ``c`` from token ``i``
to token ``j`` inclusive. Entries with ``i > j`` and spans reaching past a sentence's length are
ignored. A structure is a set of non-overlapping labeled spans; tokens outside every span add 0.
Its score is the sum of its spans' scores, and ``P(structure) = exp(score - log Z)``.

The dynamic program is the semi-Markov forward-backward: ``f[j]`` sums the structures of the
prefix ``0..j-1``, ``g[i]`` those of the suffix ``i..len-1``; a token is outside every span, or the
end of exactly one span. It loops over positions, never over sentences; on CUDA tensors both loops
run inside one fused Triton kernel (:mod:`fused_span`).
"""
from dataclasses import dataclass
from typing import Tuple

import torch

from allennlp_structkd.structures.distribution import Marginals, StructuredDistribution

# Impossible spans score NEG rather than -inf, so that log-sum-exp over an all-impossible set stays
# finite and gradients stay free of NaN; exp(NEG - anything reasonable) is exactly 0.
NEG = -1e30

__all__ = ["SpanChart", "log_partition", "span_marginals", "bioes_marginals", "bioes_label_names", "decode"]


def _valid_spans(span_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scores with ``NEG`` for ``i > j`` and for spans past the sentence's length."""
    if span_scores.dim() != 4 or span_scores.size(1) != span_scores.size(2):
        raise ValueError(f"span_scores must be (B, n, n, C), got shape {tuple(span_scores.shape)}")
    batch, n = span_scores.shape[:2]
    if mask.shape != (batch, n):
        raise ValueError(f"mask must be ({batch}, {n}), got {tuple(mask.shape)}")
    mask = mask.bool()
    upper = torch.ones(n, n, dtype=torch.bool, device=span_scores.device).triu()
    valid = upper.unsqueeze(0) & mask.unsqueeze(1) & mask.unsqueeze(2)
    if span_scores.dtype == torch.float64:
        return span_scores.masked_fill(~valid.unsqueeze(3), NEG)
    return span_scores.double().masked_fill_(~valid.unsqueeze(3), NEG)  # the copy is ours to fill


def _fused(span_lse: torch.Tensor):
    """The fused-kernel module for CUDA span scores (one launch instead of 2n steps), else None."""
    if not span_lse.is_cuda:
        return None
    try:
        from allennlp_structkd.structures import fused_span
    except ImportError:  # no Triton for this platform: the PyTorch path serves
        return None
    return fused_span if fused_span.supports(span_lse) else None


def _prefix_suffix_sums(scores: torch.Tensor, span_lse: torch.Tensor, lengths: torch.Tensor):
    """The PyTorch path of the semi-Markov sums: ``(f (B, n+1), g (B, n+1))``."""
    batch, n = scores.shape[:2]
    prefix = [scores.new_zeros(batch)]
    for j in range(n):
        # token j is outside every span, or the end of a span (i, j) starting after prefix f[i]
        previous = torch.stack(prefix, dim=1)  # (B, j + 1)
        ending = torch.logsumexp(previous + span_lse[:, : j + 1, j], dim=1)
        prefix.append(torch.logaddexp(prefix[j], ending))
    suffix = [scores.new_zeros(batch)] * (n + 1)
    for i in range(n - 1, -1, -1):
        following = torch.stack(suffix[i + 1:], dim=1)  # (B, n - i): g[j + 1] for j = i..n-1
        starting = torch.logsumexp(span_lse[:, i, i:] + following, dim=1)
        step = torch.logaddexp(suffix[i + 1], starting)
        suffix[i] = torch.where(i < lengths, step, torch.zeros_like(step))
    return torch.stack(prefix, dim=1), torch.stack(suffix, dim=1)  # (B, n + 1) each


def _inside_outside(span_scores: torch.Tensor, mask: torch.Tensor):
    """
    Returns ``(scores, span_lse (B, n, n), f (B, n+1), g (B, n+1), log_z (B,))``.
    ``f[:, j]``: log-sum over structures of tokens ``0..j-1``; ``g[:, i]``: of tokens ``i..len-1``
    (``g[:, i] = 0`` for ``i >= len``).
    """
    # The semi-Markov sums hold absolute log-scores that grow with the length, and marginals are
    # differences of them: float32 would lose ~1e-4 at n = 128, so the DP always runs in float64.
    scores = _valid_spans(span_scores, mask)
    batch, n = scores.shape[:2]
    span_lse = torch.logsumexp(scores, dim=3)  # (B, i, j): all types of span (i, j)
    lengths = mask.long().sum(1)
    fused = _fused(span_lse)
    if fused is not None:
        f, g = fused.prefix_suffix_sums(span_lse, lengths, NEG)
    else:
        f, g = _prefix_suffix_sums(scores, span_lse, lengths)
    log_z = f.gather(1, lengths.unsqueeze(1)).squeeze(1)
    return scores, span_lse, f, g, log_z


def log_partition(span_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log Z`` ``(B,)`` over all sets of non-overlapping labeled spans."""
    return _inside_outside(span_scores, mask)[-1].to(span_scores.dtype)


def _span_marginals(span_scores: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`span_marginals` in float64."""
    scores, _, f, g, log_z = _inside_outside(span_scores, mask)
    batch, n = scores.shape[:2]
    # log P(i, j, c) = f[i] + score + g[j + 1] - log Z: one pass over the (B, n, n, C) scores.
    # Impossible spans score NEG, so their exp is exactly 0.
    offset = f[:, :n].unsqueeze(2) + g[:, 1:].unsqueeze(1) - log_z.view(batch, 1, 1)
    span = (scores + offset.unsqueeze(3)).exp_()
    outside = (f[:, :n] + g[:, 1:] - log_z.unsqueeze(1)).exp().masked_fill(~mask.bool(), 0.0)
    return span, outside


def span_marginals(span_scores: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Returns ``(span (B, n, n, C), outside (B, n))``: ``span[b, i, j, c]`` is the probability that the
    labeled span (i, j, c) is in the structure, ``outside[b, t]`` that token t is in no span.
    """
    span, outside = _span_marginals(span_scores, mask)
    return span.to(span_scores.dtype), outside.to(span_scores.dtype)


def bioes_label_names(types):
    """The label order of :func:`bioes_marginals`: ``O`` then ``B-c, I-c, E-c, S-c`` per type."""
    names = ["O"]
    for t in types:
        names += [f"B-{t}", f"I-{t}", f"E-{t}", f"S-{t}"]
    return names


def bioes_marginals(span_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """
    Per-token BIOES marginals ``(B, n, 1 + 4C)``: index 0 is O and ``1 + 4c + k`` is B-c, I-c, E-c,
    S-c for k = 0..3. Rows sum to 1 inside each sentence and are 0 past its length.
    """
    span, outside = _span_marginals(span_scores, mask)
    batch, n, _, num_types = span.shape
    single = torch.diagonal(span, dim1=1, dim2=2).transpose(1, 2)  # (B, n, C): span (t, t)
    starting, ending = span.sum(2), span.sum(1)  # spans (t, j >= t), spans (i <= t, t)
    starts = starting - single  # spans (t, j > t)
    ends = ending - single  # spans (i < t, t)
    # covered[t] = sum_{i <= t <= j} span[i, j]
    #            = (spans starting at or before t) - (spans ending before t)
    started = starting.cumsum(1)
    ended = ending.cumsum(1)
    ended_before = torch.cat([ended.new_zeros(batch, 1, num_types), ended[:, :-1]], dim=1)
    covered = started - ended_before
    inside = (covered - single - starts - ends).clamp(min=0.0)
    per_type = torch.stack([starts, inside, ends, single], dim=3).reshape(batch, n, 4 * num_types)
    result = torch.cat([outside.unsqueeze(2), per_type], dim=2)
    return result.masked_fill(~mask.bool().unsqueeze(2), 0.0).to(span_scores.dtype)


def decode(span_scores: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    The best set of non-overlapping spans (semi-Markov Viterbi).

    Returns ``(bioes (B, n) long in the label order of bioes_marginals, 0 past each length;
    scores (B,))``.
    """
    scores = _valid_spans(span_scores.detach(), mask)
    batch, n, _, num_types = scores.shape
    best_type_score, best_type = scores.max(dim=3)  # (B, i, j)
    lengths = mask.long().sum(1)
    prefix = [scores.new_zeros(batch)]
    steps = []  # steps[j][b] = start of the span ending at j, or -1 for "token j is outside"
    for j in range(n):
        previous = torch.stack(prefix, dim=1)
        candidates = previous + best_type_score[:, : j + 1, j]
        best, start = candidates.max(dim=1)
        take = best > prefix[j]
        prefix.append(torch.where(take, best, prefix[j]))
        steps.append(torch.where(take, start, torch.full_like(start, -1)))
    f = torch.stack(prefix, dim=1)
    back = torch.stack(steps, dim=1) if n else torch.zeros(batch, 0, dtype=torch.long, device=scores.device)
    total = f.gather(1, lengths.unsqueeze(1)).squeeze(1)
    tags = torch.zeros(batch, n, dtype=torch.long, device=scores.device)
    # Backtrack all sentences together: `position` is the current end (exclusive) per sentence.
    position = lengths.clone()
    batch_index = torch.arange(batch, device=scores.device)
    for _ in range(n):
        active = position > 0
        if not active.any():
            break
        end = (position - 1).clamp(min=0)
        start = back[batch_index, end]
        is_span = active & (start >= 0)
        span_start = start.clamp(min=0)
        label = best_type[batch_index, span_start, end]
        positions = torch.arange(n, device=scores.device).unsqueeze(0)
        inside = is_span.unsqueeze(1) & (positions >= span_start.unsqueeze(1)) & (positions <= end.unsqueeze(1))
        kind = torch.full_like(tags, 1)  # I
        kind = torch.where(positions == span_start.unsqueeze(1), torch.zeros_like(kind), kind)  # B
        kind = torch.where(positions == end.unsqueeze(1), torch.full_like(kind, 2), kind)  # E
        single = (span_start == end).unsqueeze(1) & (positions == end.unsqueeze(1))
        kind = torch.where(single, torch.full_like(kind, 3), kind)  # S
        tags = torch.where(inside, 1 + 4 * label.unsqueeze(1) + kind, tags)
        position = torch.where(is_span, span_start, position - 1).where(active, position)
    return tags, total


@dataclass
class SpanChart(StructuredDistribution):
    """
    NER as parsing (this module's conventions): ``span_scores`` ``(B, n, n, C)``, ``mask`` ``(B, n)``; the exact
    distribution over sets of non-overlapping labeled spans. Marginals: ``unary`` ``(B, n, n, C)``, each labeled
    span's probability; argmax: the best set as BIOES tags ``(B, n)`` in the order of :func:`bioes_label_names`;
    :meth:`bioes_marginals`: what a token-level student learns from. Its factors are spans, not positions, so only
    the global temperature applies (a local one tempers the BIOES marginals, the adapter's business); no k-best.
    """

    span_scores: torch.Tensor
    mask: torch.Tensor

    def log_partition(self) -> torch.Tensor:
        return log_partition(self.span_scores, self.mask)

    def marginals(self) -> Marginals:
        return Marginals(span_marginals(self.span_scores, self.mask)[0])

    def bioes_marginals(self) -> torch.Tensor:
        """Per-token BIOES marginals ``(B, n, 1 + 4C)``, see :func:`bioes_marginals`."""
        return bioes_marginals(self.span_scores, self.mask)

    def argmax(self) -> torch.Tensor:
        return decode(self.span_scores, self.mask)[0]

    def scaled(self, factor: float) -> "SpanChart":
        return SpanChart(self.span_scores * factor, self.mask)

    def locally_tempered(self, temperature: float) -> Marginals:
        raise ValueError("a span chart's factors are spans, not positions: it has no local temperature (temper its "
                         "BIOES marginals, per token, or use the global mode)")

"""
Linear-chain CRF inference for serving: Viterbi decoding and exact per-token marginals, batched over
sentences (a loop over positions only), in log space. Shapes: ``emissions`` ``(B, n, L)``,
``transitions`` ``(L, L)`` [from, to], ``start``/``end`` ``(L,)``, ``mask`` ``(B, n)`` with every
sentence's tokens first (padding after).
"""
from typing import Tuple

import torch


def viterbi(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
            mask: torch.Tensor) -> torch.Tensor:
    """The best label sequence ``(B, n)`` (0 past each length)."""
    batch, length, labels = emissions.shape
    if length == 0:
        return emissions.new_zeros(batch, 0, dtype=torch.long)
    score = start + emissions[:, 0]  # (B, L)
    pointers = []
    identity = torch.arange(labels, device=emissions.device).expand(batch, labels)
    for i in range(1, length):
        best, pointer = (score.unsqueeze(2) + transitions).max(dim=1)  # over the previous label
        step = mask[:, i].unsqueeze(1)
        score = torch.where(step, best + emissions[:, i], score)  # past a sentence's end its score rides along
        pointers.append(torch.where(step, pointer, identity))
    last = (score + end).argmax(dim=1)
    tags = [last]
    for pointer in reversed(pointers):
        last = pointer.gather(1, last.unsqueeze(1)).squeeze(1)
        tags.append(last)
    tags = torch.stack(tags[::-1], dim=1)
    return torch.where(mask, tags, torch.zeros_like(tags))


def marginals(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
              mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    ``(P(y_i = a) (B, n, L), log Z (B,))`` by the forward-backward algorithm; 0 past each length.

    The forward and backward scores are normalised at every position (their log-sum-exp kept apart), so
    that they stay near 0 and float32 keeps its precision; a position's marginals are the softmax of
    their sum, which is exact (``Σ_a exp(α_i(a) + β_i(a)) = Z`` at every position). Subtracting a log Z
    of some hundreds instead loses ~1e-5 in float32.
    """
    batch, length, labels = emissions.shape
    if length == 0:
        return emissions.new_zeros(batch, 0, labels), emissions.new_zeros(batch)
    alpha = start + emissions[:, 0]
    scale = torch.logsumexp(alpha, dim=1, keepdim=True)
    log_z = scale.squeeze(1)
    alphas = [alpha - scale]
    for i in range(1, length):
        step = torch.logsumexp(alphas[-1].unsqueeze(2) + transitions, dim=1) + emissions[:, i]
        scale = torch.logsumexp(step, dim=1, keepdim=True)
        inside = mask[:, i]
        alphas.append(torch.where(inside.unsqueeze(1), step - scale, alphas[-1]))
        log_z = log_z + torch.where(inside, scale.squeeze(1), torch.zeros_like(log_z))
    log_z = log_z + torch.logsumexp(alphas[-1] + end, dim=1)
    lengths = mask.long().sum(1)
    betas = [None] * length
    beta = end.expand(batch, labels)
    for i in range(length - 1, -1, -1):
        if i < length - 1:
            inside = torch.logsumexp(transitions + (emissions[:, i + 1] + beta).unsqueeze(1), dim=2)
            inside = inside - torch.logsumexp(inside, dim=1, keepdim=True)
            # the last token of a sentence ends it: its beta is the end score
            beta = torch.where((i < lengths - 1).unsqueeze(1), inside, end.expand(batch, labels))
        betas[i] = beta
    probs = (torch.stack(alphas, dim=1) + torch.stack(betas, dim=1)).softmax(dim=2)
    return probs * mask.unsqueeze(2).to(probs.dtype), torch.where(lengths > 0, log_z, torch.zeros_like(log_z))

"""
Linear-chain CRF inference for serving: Viterbi decoding and exact per-token marginals, batched over
sentences (a loop over positions only), in log space. Shapes: ``emissions`` ``(B, n, L)``,
``transitions`` ``(L, L)`` [from, to], ``start``/``end`` ``(L,)``, ``mask`` ``(B, n)`` with every
sentence's tokens first (padding after).
"""
from typing import List, Tuple

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
    steps = [last]
    for pointer in reversed(pointers):
        last = pointer.gather(1, last.unsqueeze(1)).squeeze(1)
        steps.append(last)
    tags = torch.stack(steps[::-1], dim=1)
    return torch.where(mask, tags, torch.zeros_like(tags))


def marginals(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
              mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    ``(P(y_i = a) (B, n, L), log Z (B,))`` by the forward-backward algorithm; 0 past each length.

    Scaled, in probability space: the scores are exponentiated once (each position's emissions less their
    maximum, the transitions less theirs; a forbidden transition's -1e4 becomes 0) and the forward and
    backward vectors renormalised at every step, so that each step is one matrix product and float32
    keeps its precision; log Z is rebuilt from the normalisers and the maxima taken out. A position's
    marginals are the normalised product of its forward and backward vectors (exact:
    ``Σ_a α_i(a) β_i(a) = Z`` at every position).
    """
    batch, length, labels = emissions.shape
    if length == 0:
        return emissions.new_zeros(batch, 0, labels), emissions.new_zeros(batch)
    tiny = torch.finfo(emissions.dtype).tiny
    top = transitions.max()
    moves = (transitions - top).exp()  # (L, L)
    peaks = emissions.max(dim=2, keepdim=True).values  # (B, n, 1)
    local = (emissions - peaks).exp()  # (B, n, L)
    inside = mask.to(emissions.dtype)
    first = start + emissions[:, 0]
    first_peak = first.max(dim=1, keepdim=True).values
    alpha = (first - first_peak).exp()
    norm = alpha.sum(1, keepdim=True).clamp(min=tiny)
    alphas = [alpha / norm]
    log_z = first_peak.squeeze(1) + norm.squeeze(1).log()
    for i in range(1, length):
        step = (alphas[-1] @ moves) * local[:, i]
        norm = step.sum(1, keepdim=True).clamp(min=tiny)
        here = mask[:, i].unsqueeze(1)
        alphas.append(torch.where(here, step / norm, alphas[-1]))
        log_z = log_z + inside[:, i] * (peaks[:, i, 0] + top + norm.squeeze(1).log())
    end_peak = end.max()
    closing = (alphas[-1] * (end - end_peak).exp()).sum(1).clamp(min=tiny)
    log_z = log_z + end_peak + closing.log()
    lengths = mask.long().sum(1)
    ends = (end - end_peak).exp().expand(batch, labels)
    betas: List[torch.Tensor] = [ends] * length  # each set below
    beta = ends
    for i in range(length - 1, -1, -1):
        if i < length - 1:
            step = (local[:, i + 1] * beta) @ moves.t()
            step = step / step.sum(1, keepdim=True).clamp(min=tiny)
            # the last token of a sentence ends it: its backward vector is the end scores
            beta = torch.where((i < lengths - 1).unsqueeze(1), step, ends)
        betas[i] = beta
    joint = torch.stack(alphas, dim=1) * torch.stack(betas, dim=1)
    probs = joint / joint.sum(2, keepdim=True).clamp(min=tiny)
    return probs * inside.unsqueeze(2), torch.where(lengths > 0, log_z, torch.zeros_like(log_z))

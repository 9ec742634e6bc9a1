"""
Local tempering of a distribution's factors (the ``local`` temperature mode of
:mod:`allennlp_structkd.kd.temperature`, which explains why a chain is tempered through its
conditionals): each position's distribution ``softmax(log p / T)``, and a linear chain's Markov
factorisation. Pure tensor functions, below every model and objective.
"""
from typing import Tuple

import torch


def temper_distribution(probs: torch.Tensor, temperature: float, start_dim: int) -> torch.Tensor:
    """
    ``softmax(log p / T)`` over the dimensions from ``start_dim`` on (zero entries stay zero, an
    all-zero distribution, i.e. padding, stays all zero).
    """
    if temperature == 1.0:
        return probs
    flat = probs.flatten(start_dim)
    logits = torch.where(flat > 0, flat.clamp(min=1e-45).log() / temperature, torch.full_like(flat, float("-inf")))
    return logits.softmax(dim=-1).nan_to_num(0.0).view(probs.shape)


def temper_chain(
    unary: torch.Tensor, pairwise: torch.Tensor, mask: torch.Tensor, temperature: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Local temperature of a linear-chain distribution given its exact marginals.

    # Parameters

    unary : ``torch.Tensor``
        ``(B, n, L)``, ``P(y_i = a)``, zero past each length.
    pairwise : ``torch.Tensor``
        ``(B, n, L, L)``, ``P(y_{i-1} = a, y_i = b)`` at ``[:, i, a, b]`` (``[:, 0]`` unused).
    mask : ``torch.BoolTensor``
        ``(B, n)``.
    temperature : ``float``

    # Returns

    ``(unary, pairwise)`` of the Markov chain ``q_0(y_0) Π_i q_i(y_i | y_{i-1})`` whose factors are
    the chain's own, tempered (see the module docstring): consistent marginals
    (``Σ_a pairwise[i, a, b] = unary[i, b]``, ``Σ_b pairwise[i, a, b] = unary[i-1, a]``), zero past each
    length and at ``pairwise[:, 0]``.
    """
    if temperature == 1.0:
        return unary, pairwise
    fmask = mask.to(unary.dtype)
    # conditionals P(b | a) = P(a, b) / P(a); rows of labels with P(a) = 0 are never used (q(a) = 0)
    previous = unary[:, :-1].unsqueeze(3)
    conditional = torch.where(previous > 0, pairwise[:, 1:] / previous.clamp(min=1e-45), torch.zeros_like(pairwise[:, 1:]))
    conditional = temper_distribution(conditional, temperature, 3)  # (B, n-1, L, L), each row over b
    state = temper_distribution(unary[:, 0], temperature, 1)
    unaries, pairs = [state], [torch.zeros_like(pairwise[:, 0])]
    for i in range(1, unary.size(1)):
        pair = state.unsqueeze(2) * conditional[:, i - 1]
        pair = pair * fmask[:, i].view(-1, 1, 1)
        state = pair.sum(1)
        unaries.append(state)
        pairs.append(pair)
    tempered_unary = torch.stack(unaries, dim=1) * fmask.unsqueeze(2)
    return tempered_unary, torch.stack(pairs, dim=1)

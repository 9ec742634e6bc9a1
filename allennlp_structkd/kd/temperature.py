"""
Temperature for teacher targets, in its two modes (``KDLoss(temperature_mode=...)``).

``global``: the teacher's *whole-structure score* is divided by T, ``P_t^T(y) ∝ exp(Score_t(y)/T)``;
every teacher scales its scores by ``1/T`` before inference (a CRF's emissions, transitions, start
and end; a parser's arc, label and second-order scores; a span model's span potentials).

``local``: each *local* teacher distribution is tempered, ``softmax(log p / T)``:

* a distribution that factorises over positions (a MaxEnt tagger's tokens, a parser's heads and
  deprels per word, BIOES marginals given to a MaxEnt student): each position's distribution;
* a linear-chain CRF: its chain-rule factors. The CRF is the Markov chain
  ``P(y) = P(y_0) Π_i P(y_i | y_{i-1})`` with ``P(y_i=b | y_{i-1}=a) = P(a, b) / P(a)`` from its exact
  marginals; the tempered targets are the marginals of the Markov chain whose initial and conditional
  distributions are those, each tempered, ``q(y) = q_0(y_0) Π_i q_i(y_i | y_{i-1})``.

Why the CRF is tempered through its conditionals: tempering its unary and pairwise marginals
separately (``softmax((α+β)/T)`` and likewise for pairs) gives pair marginals that no longer sum to
the unary ones, and the factorised loss ``-Σ_u q(u) Score_s(u) + log Z_s`` is then no cross-entropy:
it is unbounded below. The marginals of one distribution ``q`` keep it a cross-entropy ``≥ H(q) ≥ 0``.
At ``T = 1`` both modes give the teacher's own marginals; for a MaxEnt teacher ``q_i(b | a) = q_i(b)``,
so local tempering is the per-token ``softmax(log p / T)``.
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

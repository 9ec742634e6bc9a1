"""
What a sequence labeler exposes to knowledge distillation: its scores, and for a CRF its
transition scores. Teachers and students both describe themselves with :class:`Potentials`.
"""
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch

from allennlp_structkd.structures import linear_chain


class Constraints(NamedTuple):
    """
    A CRF's hard constraints (e.g. BIOES: no ``O`` → ``I-X``), True where allowed:
    ``transitions`` ``(L, L)`` ``[from, to]``, ``start`` and ``end`` ``(L,)``.
    """

    transitions: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor


@dataclass
class Potentials:
    """
    ``emissions``: ``(B, n, L)`` — CRF emission scores, or a MaxEnt model's logits;
    ``mask``: ``(B, n)`` bool; ``transitions`` ``(L, L)`` ``[from, to]`` and optional
    ``start``/``end`` ``(L,)``: set for a CRF, None for a MaxEnt (softmax) model.

    ``constraints``: what a CRF forbids. Training scores a forbidden transition with a finite
    penalty (finite gradients); :meth:`constrained` makes it ``-inf``, which is what teacher
    targets use, so that a forbidden sequence never gets probability, and is never a k-best target.
    """

    emissions: torch.Tensor
    mask: torch.Tensor
    transitions: Optional[torch.Tensor] = None
    start: Optional[torch.Tensor] = None
    end: Optional[torch.Tensor] = None
    constraints: Optional[Constraints] = field(default=None, repr=False, compare=False)
    # the hidden states the scores were computed from (B, n, H), for representation-level KD
    hidden: Optional[torch.Tensor] = field(default=None, repr=False, compare=False)
    # log Z is needed by the gold loss and by most KD losses: computed once per forward pass
    _log_z: Optional[torch.Tensor] = field(default=None, repr=False, compare=False)

    @property
    def is_crf(self) -> bool:
        return self.transitions is not None

    @property
    def chain(self) -> linear_chain.LinearChain:
        """A CRF's distribution over label sequences."""
        return linear_chain.LinearChain(self.emissions, self.transitions, self.mask, self.start, self.end)

    def scaled(self, factor: float) -> "Potentials":
        """Every score multiplied by ``factor`` (``1 / T`` for a global temperature)."""
        if factor == 1.0:
            return self
        mul = lambda t: None if t is None else t * factor  # noqa: E731
        return Potentials(self.emissions * factor, self.mask, mul(self.transitions), mul(self.start), mul(self.end),
                          self.constraints)

    def detached(self) -> "Potentials":
        """The same scores without their graph (a teacher's targets need no gradients)."""
        det = lambda t: None if t is None else t.detach()  # noqa: E731
        return Potentials(self.emissions.detach(), self.mask, det(self.transitions), det(self.start), det(self.end),
                          self.constraints, det(self.hidden))

    def constrained(self) -> "Potentials":
        """Forbidden transitions, first and last labels at ``-inf``: the distribution over allowed sequences only."""
        if self.constraints is None or not self.is_crf:
            return self
        forbid = lambda t, allowed: t.masked_fill(~allowed, float("-inf"))  # noqa: E731
        start = None if self.start is None else forbid(self.start, self.constraints.start)
        end = None if self.end is None else forbid(self.end, self.constraints.end)
        if start is None and not bool(self.constraints.start.all()):
            start = forbid(self.emissions.new_zeros(self.emissions.size(2)), self.constraints.start)
        if end is None and not bool(self.constraints.end.all()):
            end = forbid(self.emissions.new_zeros(self.emissions.size(2)), self.constraints.end)
        return Potentials(self.emissions, self.mask, forbid(self.transitions, self.constraints.transitions), start, end,
                          self.constraints, self.hidden)

    def log_partition(self) -> torch.Tensor:
        """``(B,)``; for a MaxEnt model the sum of per-token log-normalisers. Memoised."""
        if self._log_z is None:
            if self.is_crf:
                self._log_z = self.chain.log_partition()
            else:
                lse = torch.logsumexp(self.emissions, dim=2)
                self._log_z = (lse * self.mask.to(lse.dtype)).sum(1)
        return self._log_z

    def sequence_log_probs(self, tags: torch.Tensor) -> torch.Tensor:
        """``log P(y)`` for label sequences ``tags`` ``(B, K, n)`` -> ``(B, K)``."""
        batch, k, n = tags.shape
        expand = lambda t: t.unsqueeze(1).expand(batch, k, *t.shape[1:]).reshape(batch * k, *t.shape[1:])  # noqa: E731
        emissions, mask = expand(self.emissions), expand(self.mask)
        flat_tags = tags.reshape(batch * k, n)
        if self.is_crf:
            scores = linear_chain.sequence_score(emissions, self.transitions, flat_tags, mask, self.start, self.end)
            return scores.view(batch, k) - self.log_partition().unsqueeze(1)
        log_probs = emissions.log_softmax(dim=2).gather(2, flat_tags.clamp(min=0).unsqueeze(2)).squeeze(2)
        return (log_probs * mask.to(log_probs.dtype)).sum(1).view(batch, k)

    def unary_marginals(self) -> torch.Tensor:
        """``P(y_i = a)`` ``(B, n, L)`` (zeros past each length)."""
        if self.is_crf:
            return self.chain.unary_marginals()
        return self.emissions.softmax(dim=2) * self.mask.unsqueeze(2).to(self.emissions.dtype)

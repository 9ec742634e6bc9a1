"""
What a sequence labeler's scores define, as knowledge distillation uses it: the distribution,
one object per output structure (as SuPar's ``structs`` and torch-struct's distributions).
Teachers and students both describe themselves with these, and the KD objectives call only their
methods, never asking which kind they are:

* :class:`ChainPotentials`: a linear-chain CRF (emissions, transitions, start and end scores);
* :class:`TokenPotentials`: per-token softmax (a MaxEnt tagger's logits).

A new output structure (a semi-Markov CRF, say) is a new subclass implementing the same methods.
``Potentials(emissions, mask, transitions, ...)`` makes the chain when it is given transitions and
the per-token distribution otherwise.
"""
from abc import ABC, abstractmethod
from typing import NamedTuple, Optional, Tuple

import torch

from allennlp_structkd.structures import linear_chain
from allennlp_structkd.structures.tempering import temper_distribution


class Constraints(NamedTuple):
    """
    A CRF's hard constraints (e.g. BIOES: no ``O`` → ``I-X``), True where allowed:
    ``transitions`` ``(L, L)`` ``[from, to]``, ``start`` and ``end`` ``(L,)``.
    """

    transitions: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor


class Potentials(ABC):
    """
    ``emissions``: ``(B, n, L)`` — CRF emission scores, or a MaxEnt model's logits; ``mask``: ``(B, n)``
    bool; ``transitions`` ``(L, L)`` ``[from, to]`` and optional ``start``/``end`` ``(L,)`` for a chain;
    ``constraints``: what a chain forbids (training scores a forbidden transition with a finite penalty,
    for finite gradients; :meth:`constrained` makes it ``-inf``, which is what teacher targets use, so
    that a forbidden sequence never gets probability and is never a k-best target).
    """

    def __new__(cls, emissions, mask, transitions=None, *args, **kwargs):
        if cls is Potentials:  # the structure follows from the scores given
            cls = TokenPotentials if transitions is None else ChainPotentials
        return super().__new__(cls)

    def __init__(self, emissions: torch.Tensor, mask: torch.Tensor, transitions: Optional[torch.Tensor] = None,
                 start: Optional[torch.Tensor] = None, end: Optional[torch.Tensor] = None,
                 constraints: Optional[Constraints] = None) -> None:
        self.emissions, self.mask = emissions, mask
        self.transitions, self.start, self.end = transitions, start, end
        self.constraints = constraints
        self._log_z: Optional[torch.Tensor] = None  # needed by the gold loss and most KD losses: computed once

    def _with(self, emissions, transitions=None, start=None, end=None) -> "Potentials":
        return type(self)(emissions, self.mask, transitions, start, end, self.constraints)

    def scaled(self, factor: float) -> "Potentials":
        """Every score multiplied by ``factor`` (``1 / T`` for a global temperature)."""
        if factor == 1.0:
            return self
        mul = lambda t: None if t is None else t * factor  # noqa: E731
        return self._with(self.emissions * factor, mul(self.transitions), mul(self.start), mul(self.end))

    def detached(self) -> "Potentials":
        """The same scores without their graph (a teacher's targets need no gradients)."""
        det = lambda t: None if t is None else t.detach()  # noqa: E731
        return self._with(self.emissions.detach(), det(self.transitions), det(self.start), det(self.end))

    def constrained(self) -> "Potentials":
        """The distribution over allowed structures only (what a teacher's targets are taken from)."""
        return self

    def _masked(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.mask.unsqueeze(2).to(values.dtype)

    @abstractmethod
    def log_partition(self) -> torch.Tensor:
        """``log Z`` ``(B,)``."""

    @abstractmethod
    def expected_score(self, unary: torch.Tensor, pairwise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        ``Σ_u q(u) · Score(u)`` ``(B,)`` over this structure's factors, for a distribution ``q`` given by its unary
        marginals ``(B, n, L)`` and, where it has them, its adjacent-pair marginals ``(B, n, L, L)`` (``[:, i, a, b]``:
        ``y_{i-1} = a, y_i = b``). A chain without pair marginals takes ``q`` to factorise over tokens (their product).
        ``log Z - expected_score`` is then the cross-entropy of ``q`` and this distribution (Structural KD).
        """

    @abstractmethod
    def unary_marginals(self) -> torch.Tensor:
        """``P(y_i = a)`` ``(B, n, L)`` (zeros past each length)."""

    @abstractmethod
    def unary_log_marginals(self) -> torch.Tensor:
        """``log P(y_i = a)`` ``(B, n, L)``, differentiable (Posterior KD's student side)."""

    @abstractmethod
    def sequence_log_probs(self, tags: torch.Tensor) -> torch.Tensor:
        """``log P(y)`` for label sequences ``tags`` ``(B, K, n)`` -> ``(B, K)``."""

    @abstractmethod
    def tempered_marginals(self, temperature: float) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(unary, pairwise or None)`` marginals of this distribution with each local factor tempered
        (the local temperature mode of :mod:`allennlp_structkd.kd.temperature`; ``1.0``: the marginals themselves)."""

    @abstractmethod
    def as_chain(self) -> linear_chain.LinearChain:
        """This distribution as a linear chain (the k-best sequences of Top-K objectives)."""


class ChainPotentials(Potentials):
    """A linear-chain CRF's distribution over label sequences."""

    @property
    def chain(self) -> linear_chain.LinearChain:
        assert self.transitions is not None  # what makes these potentials a chain (Potentials.__new__)
        return linear_chain.LinearChain(self.emissions, self.transitions, self.mask, self.start, self.end)

    def constrained(self) -> "Potentials":
        """Forbidden transitions, first and last labels at ``-inf``: the distribution over allowed sequences only."""
        if self.constraints is None:
            return self
        forbid = lambda t, allowed: t.masked_fill(~allowed, float("-inf"))  # noqa: E731
        start = None if self.start is None else forbid(self.start, self.constraints.start)
        end = None if self.end is None else forbid(self.end, self.constraints.end)
        if start is None and not bool(self.constraints.start.all()):
            start = forbid(self.emissions.new_zeros(self.emissions.size(2)), self.constraints.start)
        if end is None and not bool(self.constraints.end.all()):
            end = forbid(self.emissions.new_zeros(self.emissions.size(2)), self.constraints.end)
        return self._with(self.emissions, forbid(self.transitions, self.constraints.transitions), start, end)

    def log_partition(self) -> torch.Tensor:
        if self._log_z is None:
            self._log_z = self.chain.log_partition()
        return self._log_z

    def expected_score(self, unary: torch.Tensor, pairwise: Optional[torch.Tensor] = None) -> torch.Tensor:
        mask = self.mask
        emissions = torch.where(mask.unsqueeze(2), self.emissions, torch.zeros_like(self.emissions))
        expected = (unary * emissions).flatten(1).sum(1)
        if pairwise is not None:
            expected = expected + torch.einsum("nixy,xy->n", pairwise[:, 1:], self.transitions)
        elif unary.size(1) > 1:  # a distribution that factorises over tokens: its pairs are products
            following = unary[:, 1:] * mask[:, 1:].unsqueeze(2).to(unary.dtype)
            expected = expected + torch.einsum("nix,xy,niy->n", unary[:, :-1], self.transitions, following)
        lengths = mask.long().sum(1)
        if self.start is not None:
            expected = expected + (unary[:, 0] * self.start).sum(1)
        if self.end is not None:
            last = unary.gather(1, (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, unary.size(2))).squeeze(1)
            expected = expected + (last * self.end).sum(1)
        return expected

    def unary_marginals(self) -> torch.Tensor:
        return self.chain.unary_marginals()

    def unary_log_marginals(self) -> torch.Tensor:
        _, log_unary, _ = self.chain.forward_backward()
        return log_unary

    def sequence_log_probs(self, tags: torch.Tensor) -> torch.Tensor:
        batch, k, n = tags.shape
        assert self.transitions is not None
        expand = lambda t: t.unsqueeze(1).expand(batch, k, *t.shape[1:]).reshape(batch * k, *t.shape[1:])  # noqa: E731
        scores = linear_chain.sequence_score(expand(self.emissions), self.transitions, tags.reshape(batch * k, n),
                                             expand(self.mask), self.start, self.end)
        return scores.view(batch, k) - self.log_partition().unsqueeze(1)

    def tempered_marginals(self, temperature: float) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.chain.locally_tempered(temperature)

    def as_chain(self) -> linear_chain.LinearChain:
        return self.chain


class TokenPotentials(Potentials):
    """Per-token softmax: each position's label independent of the others (a MaxEnt tagger)."""

    def log_partition(self) -> torch.Tensor:
        """The sum of the per-token log-normalisers."""
        if self._log_z is None:
            lse = torch.logsumexp(self.emissions, dim=2)
            self._log_z = (lse * self.mask.to(lse.dtype)).sum(1)
        return self._log_z

    def expected_score(self, unary: torch.Tensor, pairwise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Only the unary factors: a per-token model has no pair scores (a teacher's pair marginals do not enter)."""
        emissions = torch.where(self.mask.unsqueeze(2), self.emissions, torch.zeros_like(self.emissions))
        return (unary * emissions).flatten(1).sum(1)

    def unary_marginals(self) -> torch.Tensor:
        return self._masked(self.emissions.softmax(dim=2))

    def unary_log_marginals(self) -> torch.Tensor:
        return self.emissions.log_softmax(dim=2)

    def sequence_log_probs(self, tags: torch.Tensor) -> torch.Tensor:
        batch, k, n = tags.shape
        log_probs = self.emissions.log_softmax(dim=2).unsqueeze(1).expand(batch, k, n, -1)
        chosen = log_probs.gather(3, tags.clamp(min=0).unsqueeze(3)).squeeze(3)
        return (chosen * self.mask.unsqueeze(1).to(chosen.dtype)).sum(2)

    def tempered_marginals(self, temperature: float) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return temper_distribution(self.unary_marginals(), temperature, 2), None

    def as_chain(self) -> linear_chain.LinearChain:
        """A chain with zero transitions over the log-probabilities: the same distribution over sequences."""
        emissions = self.emissions.log_softmax(dim=2)
        return linear_chain.LinearChain(emissions, emissions.new_zeros(emissions.size(2), emissions.size(2)), self.mask)

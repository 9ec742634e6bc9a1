"""
One distribution object per output structure, with the same small surface (as SuPar's
``structs/dist.py`` and torch-struct's distributions): a batch of scores and its mask in, then

* :meth:`~StructuredDistribution.log_partition` ``(B,)``;
* :meth:`~StructuredDistribution.marginals`: the probability of each of the structure's factors
  (:class:`Marginals`: ``unary``, and ``pairwise`` where the structure has pairs);
* :meth:`~StructuredDistribution.argmax`: the best structure (exact, or the approximation's);
* :meth:`~StructuredDistribution.kbest`, where the structure defines it (:meth:`has_kbest`);
* :meth:`~StructuredDistribution.scaled` (every score times a factor) and
  :meth:`~StructuredDistribution.tempered` (the marginals at a temperature, ``global`` or ``local``).

The structures: :class:`~allennlp_structkd.structures.token_softmax.TokenSoftmax` (independent
tokens), :class:`~allennlp_structkd.structures.linear_chain.LinearChain`,
:class:`~allennlp_structkd.structures.head_selection.HeadSelection` (first-order heads),
:class:`~allennlp_structkd.structures.second_order.SecondOrderMeanField` and
:class:`~allennlp_structkd.structures.span_dp.SpanChart` (NER as parsing). The free functions of
each module stay their implementation; a new structure is one new subclass.
"""
from abc import ABC, abstractmethod
from typing import NamedTuple, Optional, Tuple

import torch

from allennlp_structkd.structures.tempering import temper_distribution

TEMPERATURE_MODES = ("global", "local")


class Marginals(NamedTuple):
    """A distribution's factor marginals: ``unary`` (its per-position factors, shapes in each class's docstring) and,
    for a structure with pair factors, ``pairwise``."""

    unary: torch.Tensor
    pairwise: Optional[torch.Tensor] = None


class StructuredDistribution(ABC):
    """A batch of distributions over one kind of structure, with its ``mask`` ``(B, n)``; see the module docstring."""

    @abstractmethod
    def log_partition(self) -> torch.Tensor:
        """``log Z`` ``(B,)``: exact, or for an approximate structure its bound (said in its docstring)."""

    @abstractmethod
    def marginals(self) -> Marginals:
        """The probability of each factor of the structure; zeros on padding."""

    @abstractmethod
    def argmax(self) -> torch.Tensor:
        """The best structure of each batch element, encoded as its class's docstring says."""

    @abstractmethod
    def scaled(self, factor: float) -> "StructuredDistribution":
        """The same structure with every score multiplied by ``factor`` (``1 / T``: global temperature)."""

    def kbest(self, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(structures (B, k, ...), scores (B, k))``, best first, where the structure defines k-best."""
        raise NotImplementedError(f"{type(self).__name__} has no k-best structures")

    @classmethod
    def has_kbest(cls) -> bool:
        """Whether this structure defines :meth:`kbest` (Top-K objectives need it)."""
        return cls.kbest is not StructuredDistribution.kbest

    def tempered(self, temperature: float, mode: str = "global") -> Marginals:
        """
        The marginals at ``temperature``: ``global`` divides the whole structure's score by T
        (:meth:`scaled`), ``local`` tempers each local factor (:meth:`locally_tempered`). ``T = 1`` gives
        :meth:`marginals` in both modes.
        """
        if mode not in TEMPERATURE_MODES:
            raise ValueError(f"temperature mode must be one of {', '.join(TEMPERATURE_MODES)}, got {mode!r}")
        if not temperature > 0:
            raise ValueError(f"a temperature must be positive, got {temperature!r}")
        if temperature == 1.0:
            return self.marginals()
        if mode == "global":
            return self.scaled(1.0 / temperature).marginals()
        return self.locally_tempered(temperature)

    def locally_tempered(self, temperature: float) -> Marginals:
        """Each position's distribution over its last dimension tempered, ``softmax(log p / T)``: right for a
        structure whose factors are independent per position; a structure with other factors overrides it."""
        marginals = self.marginals()
        return Marginals(temper_distribution(marginals.unary, temperature, marginals.unary.dim() - 1))

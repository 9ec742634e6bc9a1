"""
Independent tokens: a MaxEnt tagger's distribution, one softmax a token, as a
:class:`~allennlp_structkd.structures.distribution.StructuredDistribution`.
"""
from dataclasses import dataclass
from typing import Tuple

import torch

from allennlp_structkd.structures import linear_chain
from allennlp_structkd.structures.distribution import Marginals, StructuredDistribution


@dataclass
class TokenSoftmax(StructuredDistribution):
    """
    ``logits`` ``(B, n, L)``, ``mask`` ``(B, n)``: ``P(y) = Π_i softmax(logits_i)[y_i]``. Marginals: ``unary``
    ``(B, n, L)``; argmax: tags ``(B, n)`` (0 past each length); k-best: the chain with no transitions.
    """

    logits: torch.Tensor
    mask: torch.Tensor

    def log_partition(self) -> torch.Tensor:
        return (self.logits.logsumexp(dim=2) * self.mask.to(self.logits.dtype)).sum(1)

    def marginals(self) -> Marginals:
        return Marginals(self.logits.softmax(dim=2) * self.mask.unsqueeze(2).to(self.logits.dtype))

    def argmax(self) -> torch.Tensor:
        return self.logits.argmax(dim=2) * self.mask.long()

    def scaled(self, factor: float) -> "TokenSoftmax":
        return TokenSoftmax(self.logits * factor, self.mask)

    def kbest(self, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        labels = self.logits.size(2)
        tags, scores = linear_chain.kbest(self.logits, self.logits.new_zeros(labels, labels), self.mask, k)
        return tags, scores  # scores: the sum of each sequence's logits, as a chain's k-best scores are

    def log_prob(self, tags: torch.Tensor) -> torch.Tensor:
        """``log P(tags)`` ``(B,)`` of label sequences ``tags`` ``(B, n)``."""
        log_probs = self.logits.log_softmax(dim=2).gather(2, tags.unsqueeze(2)).squeeze(2)
        return (log_probs * self.mask.to(log_probs.dtype)).sum(1)

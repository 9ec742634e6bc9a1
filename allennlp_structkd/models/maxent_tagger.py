import torch
from allennlp.models import Model

from allennlp_structkd.models.tagger import SequenceTagger
from allennlp_structkd.structures.potentials import Potentials, TokenPotentials


@Model.register("structkd_maxent_tagger")
class MaxEntTagger(SequenceTagger):
    """
    A tagger with a MaxEnt (softmax) decoder: each token's label independently, trained with
    token-level cross-entropy; ``probs`` are the per-token softmax. Parameters as
    :class:`SequenceTagger`.
    """

    def potentials(self, emissions: torch.Tensor, mask: torch.Tensor) -> Potentials:
        return TokenPotentials(emissions, mask.bool())

    def decode(self, potentials: Potentials, with_probs: bool = True):
        with torch.no_grad():
            probs = potentials.unary_marginals() if with_probs else None
            return potentials.emissions.argmax(dim=2) * potentials.mask.long(), probs

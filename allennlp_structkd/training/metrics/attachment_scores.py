from typing import Collection, Dict, Optional

import torch
from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics import Metric

# Universal (UPOS) and Penn Treebank punctuation tags: left out of UAS/LAS by default, by every parser
PUNCTUATION_TAGS = ("PUNCT", "SYM", "``", "''", ".", ",", ":", "-LRB-", "-RRB-", "#", "$")


def is_punctuation(tag: str, punctuation_tags: Collection[str] = PUNCTUATION_TAGS) -> bool:
    """The one punctuation rule of the parsers' scores: a word is punctuation when its PoS tag is one of ``punctuation_tags``."""
    return tag in punctuation_tags


@Metric.register("structkd_attachment_scores")
class AttachmentScores(Metric):
    """
    UAS and LAS (and the share of sentences entirely right). Counts are summed across workers in
    :meth:`get_metric`, not at every call, so distributed workers with different numbers of
    batches never wait on each other. Words to leave out (e.g. punctuation) are masked by the caller.
    """

    supports_distributed = True

    def __init__(self) -> None:
        self._counts = torch.zeros(5, dtype=torch.long)  # unlabeled, labeled, words, exact-u, exact-l, sentences
        self._sentences = torch.zeros(1, dtype=torch.long)

    # a parse is scored on heads and labels together, hence a signature of its own
    def __call__(self, predicted_heads, predicted_labels, gold_heads, gold_labels,  # type: ignore[override]
                 mask: Optional[torch.Tensor] = None):
        predicted_heads, predicted_labels, gold_heads, gold_labels = self.detach_tensors(
            predicted_heads, predicted_labels, gold_heads, gold_labels)
        mask = torch.ones_like(gold_heads, dtype=torch.bool) if mask is None else mask.detach().bool()
        unlabeled = (predicted_heads == gold_heads) & mask
        labeled = unlabeled & (predicted_labels == gold_labels)
        words = mask.sum(1)
        self._counts += torch.stack([
            unlabeled.sum(), labeled.sum(), words.sum(),
            (unlabeled.sum(1) == words).sum(), (labeled.sum(1) == words).sum(),
        ]).cpu()
        self._sentences += gold_heads.size(0)

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        counts = dist_reduce_sum(torch.cat([self._counts, self._sentences]).clone())
        unlabeled, labeled, words, exact_u, exact_l, sentences = counts.tolist()
        metrics = {
            "UAS": unlabeled / words if words else 0.0,
            "LAS": labeled / words if words else 0.0,
            "UEM": exact_u / sentences if sentences else 0.0,
            "LEM": exact_l / sentences if sentences else 0.0,
        }
        if reset:
            self.reset()
        return metrics

    def reset(self) -> None:
        self._counts.zero_()
        self._sentences.zero_()

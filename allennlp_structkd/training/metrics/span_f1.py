from collections import Counter
from typing import Dict, Iterable, Optional, Sequence

import torch
from allennlp.data import Vocabulary
from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics import Metric

from allennlp_structkd.dataset_readers.tag_schemes import entities


@Metric.register("structkd_span_f1")
class SpanF1(Metric):
    """
    Span precision, recall and F1, per type and overall, for BIO/IOB1/BIOES tags, with the chunk
    rules of conlleval (:func:`~allennlp_structkd.dataset_readers.tag_schemes.entities`: invalid sequences are read
    leniently, e.g. ``I-PER`` after ``O`` starts a span), so that MaxEnt students' unconstrained
    predictions are scored the standard way.

    Unlike allennlp's ``SpanBasedF1Measure``, it aggregates under distributed training: counts of
    true positives, false positives and false negatives are summed across workers before division.
    Types are summed in a fixed order (the label vocabulary's types), so every worker reduces
    tensors of the same shape.

    # Parameters

    vocabulary : `Vocabulary`, required
        Gives the label names of ``tag_namespace``.
    tag_namespace : `str`, optional (default = `"labels"`)
        The namespace of the predicted and gold tags.
    """

    supports_distributed = True

    def __init__(self, vocabulary: Vocabulary, tag_namespace: str = "labels") -> None:
        self._labels = vocabulary.get_index_to_token_vocabulary(tag_namespace)
        self._types = sorted({label[2:] for label in self._labels.values() if len(label) > 2 and label[1] == "-"})
        self._counts = torch.zeros(len(self._types), 3, dtype=torch.long)  # tp, fp, fn

    def __call__(self, predictions: torch.Tensor, gold_labels: torch.Tensor, mask: Optional[torch.Tensor] = None):
        """``predictions`` and ``gold_labels``: ``(B, n)`` label ids; ``mask`` ``(B, n)``."""
        predictions, gold_labels = self.detach_tensors(predictions, gold_labels)
        mask = torch.ones_like(gold_labels, dtype=torch.bool) if mask is None else mask.detach()
        lengths = mask.long().sum(1).tolist()
        pred_rows = predictions.tolist()
        gold_rows = gold_labels.tolist()
        self.add_sequences(
            ([self._labels[t] for t in row[:n]] for row, n in zip(pred_rows, lengths)),
            ([self._labels[t] for t in row[:n]] for row, n in zip(gold_rows, lengths)),
        )

    def add_sequences(self, predicted: Iterable[Sequence[str]], gold: Iterable[Sequence[str]]) -> None:
        counts: Counter = Counter()
        for pred_tags, gold_tags in zip(predicted, gold):
            pred = set(entities(pred_tags))
            true = set(entities(gold_tags))
            for kind, _, _ in pred & true:
                counts[kind, 0] += 1
            for kind, _, _ in pred - true:
                counts[kind, 1] += 1
            for kind, _, _ in true - pred:
                counts[kind, 2] += 1
        for (kind, column), value in counts.items():
            if kind not in self._types:  # a type the vocabulary lacks (e.g. from predicted garbage)
                self._types.append(kind)
                self._counts = torch.cat([self._counts, self._counts.new_zeros(1, 3)])
            self._counts[self._types.index(kind), column] += value

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        counts = dist_reduce_sum(self._counts.clone())
        metrics = {}
        for kind, (tp, fp, fn) in zip(self._types, counts.tolist()):
            p, r, f = _prf(tp, fp, fn)
            metrics.update({f"precision-{kind}": p, f"recall-{kind}": r, f"f1-measure-{kind}": f})
        tp, fp, fn = counts.sum(0).tolist() if len(self._types) else (0, 0, 0)
        p, r, f = _prf(tp, fp, fn)
        metrics.update({"precision-overall": p, "recall-overall": r, "f1-measure-overall": f})
        if reset:
            self.reset()
        return metrics

    def reset(self) -> None:
        self._counts.zero_()


def _prf(tp: int, fp: int, fn: int):
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1

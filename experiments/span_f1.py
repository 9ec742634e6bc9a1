"""Span F1 of BIO tag sequences, for the rows the suites score outside `allennlp evaluate`."""
from typing import List


def span_f1(gold: List[List[str]], predicted: List[List[str]]) -> float:
    """Micro span F1 of BIO tag sequences, spans read as AllenNLP's span F1 reads them (an ``I-`` that does not
    continue a span of its type starts one, as conlleval does)."""
    from allennlp.data.dataset_readers.dataset_utils.span_utils import bio_tags_to_spans

    found = correct = wanted = 0
    for gold_tags, guessed_tags in zip(gold, predicted):
        gold_spans, guessed_spans = set(bio_tags_to_spans(gold_tags)), set(bio_tags_to_spans(guessed_tags))
        found, wanted, correct = found + len(guessed_spans), wanted + len(gold_spans), correct + len(gold_spans & guessed_spans)
    precision, recall = correct / max(found, 1), correct / max(wanted, 1)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

"""
Entities from a predicted tag sequence: the one reading of predictions that the spaCy component, the
AllenNLP predictor, the demo and the span F1 metric share (the library imports it from here). It needs
nothing but Python, so that serving installs no evaluation library; the tests check it against
seqeval's ``get_entities`` (conlleval's chunk rules).
"""
from typing import List, Sequence, Tuple

SPAN_PREFIXES = ("B-", "I-", "E-", "S-", "U-", "L-")


def is_span_label_set(labels: Sequence[str]) -> bool:
    """Whether labels are of a span scheme (BIO, IOB1, BIOES or BIOUL), so that they make entities."""
    return any(label[:2] in SPAN_PREFIXES for label in labels)


def entities(tags: Sequence[str]) -> List[Tuple[str, int, int]]:
    """
    The entities ``(type, start, end_inclusive)`` of a tag sequence of any span scheme, read leniently by
    conlleval's chunk rules: an ``I-``/``E-`` that continues nothing opens an entity, BIOUL's ``U-``/``L-``
    are read as BIOES's ``S-``/``E-``, and a tag of no span scheme is ``O``.
    """
    found: List[Tuple[str, int, int]] = []
    start, kind = None, ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, label = (tag[0], tag[2:]) if tag[:2] in SPAN_PREFIXES else ("O", "")
        prefix = {"U": "S", "L": "E"}.get(prefix, prefix)
        continues = start is not None and label == kind and prefix in "IE"
        if start is not None and not continues:
            found.append((kind, start, i - 1))
            start, kind = None, ""
        if prefix in "BS" or (prefix in "IE" and not continues):
            start, kind = i, label
        if start is not None and prefix in "ES":
            found.append((kind, start, i))
            start, kind = None, ""
    return found

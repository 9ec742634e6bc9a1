"""
Span tag schemes: IOB1, IOB2 (= BIO) and BIOES (= BIOUL), read strictly and converted.

A tag sequence is turned into labeled spans ``(start, end_inclusive, type)`` and back. Reading is
strict: a sequence that the scheme does not allow raises :class:`TagSchemeError` with the index
of the first bad tag, so that readers can name the file and line; ``lenient=True`` reads it as
conlleval does instead (an ``I-``/``E-`` that continues nothing opens a span, a span left open is
closed), which is how public corpora's stray tags are usually repaired.
"""
from typing import List, Optional, Sequence, Tuple

# reading predicted tags as entities lives once, in the serving package (importable without AllenNLP): re-exported
from structkd_spacy.spans import SPAN_PREFIXES as SPAN_PREFIXES
from structkd_spacy.spans import entities as entities
from structkd_spacy.spans import is_span_label_set as is_span_label_set

SCHEMES = ("IOB1", "IOB2", "BIO", "BIOES", "BIOUL")
OUTPUT_SCHEMES = ("BIO", "BIOES")

Span = Tuple[int, int, str]


class TagSchemeError(ValueError):
    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


def normalize_scheme(scheme: str) -> str:
    name = scheme.upper()
    if name not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return {"BIO": "IOB2", "BIOUL": "BIOES"}.get(name, name)


def _split(tag: str, index: int) -> Tuple[str, str]:
    if tag == "O":
        return "O", ""
    if len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIESUL":
        raise TagSchemeError(index, f"tag {tag!r} is neither O nor of the form X-TYPE")
    prefix = {"U": "S", "L": "E"}.get(tag[0], tag[0])
    return prefix, tag[2:]


def spans_from_tags(tags: Sequence[str], scheme: str, lenient: bool = False) -> List[Span]:
    """Labeled spans of a tag sequence; raises :class:`TagSchemeError` on an invalid sequence (``lenient``: only on
    a tag that is no tag of the scheme)."""
    scheme = normalize_scheme(scheme)
    allowed = {"IOB1": "BIO", "IOB2": "BIO", "BIOES": "BIOES"}[scheme]
    spans: List[Span] = []
    start: Optional[int] = None  # the open span
    kind = ""
    previous = ("O", "")
    for i, tag in enumerate(tags):
        prefix, label = _split(tag, i)
        if prefix != "O" and prefix not in allowed:
            raise TagSchemeError(i, f"tag {tag!r} is not allowed in scheme {scheme}")
        if scheme == "BIOES":
            if prefix in "IE" and (start is None or kind != label):
                if not lenient:
                    raise TagSchemeError(i, f"{tag!r} does not continue a {label} span (previous tag {tags[i - 1] if i else 'none'!r})")
                if start is not None:  # the other type's open span ends before it
                    spans.append((start, i - 1, kind))
                start, kind = i, label  # it opens a span of its own
            if prefix in "BSO" and start is not None:
                if not lenient:
                    raise TagSchemeError(i, f"{tag!r} follows an unfinished span {tags[i - 1]!r}")
                spans.append((start, i - 1, kind))
                start, kind = None, ""
            if prefix == "B":
                start, kind = i, label
            elif prefix == "E":
                assert start is not None  # an E that continues nothing opened a span of its own above
                spans.append((start, i, label))
                start, kind = None, ""
            elif prefix == "S":
                spans.append((i, i, label))
        else:
            continues = prefix == "I" and start is not None and kind == label
            if scheme == "IOB2" and prefix == "I" and not continues and not lenient:
                raise TagSchemeError(i, f"{tag!r} does not continue a {label} span (previous tag {tags[i - 1] if i else 'none'!r})")
            if scheme == "IOB1" and prefix == "B" and previous[1] != label and not lenient:
                raise TagSchemeError(i, f"in IOB1, {tag!r} must follow a {label} tag (previous tag {tags[i - 1] if i else 'none'!r})")
            if not continues and start is not None:
                spans.append((start, i - 1, kind))
                start, kind = None, ""
            if prefix in "BI" and not continues:
                start, kind = i, label
        previous = (prefix, label)
    if start is not None:
        if scheme == "BIOES" and not lenient:
            raise TagSchemeError(len(tags) - 1, f"the sentence ends inside a {kind} span")
        spans.append((start, len(tags) - 1, kind))
    return spans


def tags_from_spans(spans: Sequence[Span], length: int, scheme: str) -> List[str]:
    """Tags of ``length`` tokens in ``scheme`` (BIO/IOB2, IOB1 or BIOES) for non-overlapping spans."""
    scheme = normalize_scheme(scheme)
    tags = ["O"] * length
    for start, end, label in sorted(spans):
        if scheme == "BIOES":
            if start == end:
                tags[start] = f"S-{label}"
                continue
            tags[start] = f"B-{label}"
            tags[end] = f"E-{label}"
            for t in range(start + 1, end):
                tags[t] = f"I-{label}"
        else:
            begin = "B" if scheme == "IOB2" or (start > 0 and tags[start - 1][2:] == label) else "I"
            tags[start] = f"{begin}-{label}"
            for t in range(start + 1, end + 1):
                tags[t] = f"I-{label}"
    return tags


def convert(tags: Sequence[str], source: str, target: str) -> List[str]:
    return tags_from_spans(spans_from_tags(tags, source), len(tags), target)


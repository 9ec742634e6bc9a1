import logging
from typing import Dict, Iterator, List, Optional, Tuple

from allennlp.data import DatasetReader, Field, Instance
from allennlp.data.fields import AdjacencyField, MetadataField, SequenceLabelField, TextField
from allennlp.data.token_indexers import TokenIndexer
from allennlp.data.tokenizers import Token

from allennlp_structkd.dataset_readers.common import DEFAULT_LANG, InputError, StructKDReader, read_blocks, split_columns
from allennlp_structkd.dataset_readers.tag_schemes import (
    OUTPUT_SCHEMES,
    TagSchemeError,
    normalize_scheme,
    spans_from_tags,
    tags_from_spans,
)

logger = logging.getLogger(__name__)


def _format_hint(block: List[Tuple[int, str]]) -> str:
    """What a wrong-format file most likely is: CoNLL-U (comment lines, ten tab-separated columns led by a word id)."""
    lines = [line for _, line in block]
    if any(line.startswith("# ") for line in lines) or any(
            len(line.split("\t")) == 10 and line.split("\t")[0].isdigit() for line in lines):
        return ("; this looks like CoNLL-U: read it with the structkd_conllu reader (STRUCTKD_TASK=upos for the configs' "
                "UPOS tagging)")
    return ""


@DatasetReader.register("structkd_conll_ner")
class ConllNerReader(StructKDReader):
    """
    CoNLL-2002/2003 column NER: one token a line, ``word [pos [chunk]] tag`` separated by spaces
    or tabs, a blank line between sentences, ``-DOCSTART-`` lines skipped.

    Fields: ``tokens``, ``tags`` (namespace ``labels``, in ``output_scheme``), ``metadata``
    (see :mod:`allennlp_structkd.dataset_readers.common`; also ``gold_spans``); with
    ``pos_column`` set, ``pos_tags`` (namespace ``pos``).

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
        How the words are indexed.
    tag_scheme : `str`, optional (default = `"IOB2"`)
        The scheme of the file's tags: ``IOB1``, ``IOB2``/``BIO`` or ``BIOES``/``BIOUL``.
    output_scheme : `str`, optional (default = `"BIOES"`)
        ``BIO`` or ``BIOES``.
    num_columns : `int`, optional (default = `None`)
        The number of columns every token line must have; ``None`` takes it from the first token
        line of each file.
    pos_column : `int`, optional (default = `None`)
        0-based index of a PoS column to read as ``pos_tags``, if any.
    span_labels : `bool`, optional (default = `False`)
        Also give the gold spans as ``span_labels``, an ``AdjacencyField`` ``[start, end]`` (namespace
        ``span_labels``), for NER-as-parsing models.
    lang : `str`, optional (default = `DEFAULT_LANG`)
        Written into each instance's ``metadata["lang"]`` (a ``{lang: path}`` input sets it per file).
    invalid_tags : `str`, optional (default = `"repair"`)
        A tag sequence the scheme does not allow (CoNLL-2002's training and dev files each have a
        sentence that starts with ``I-LOC``): ``"repair"`` reads it as conlleval (and the span F1
        metric) does, an ``I-`` that continues nothing opening an entity, counted and logged per file;
        ``"error"`` makes it a bad sentence (an error, or skipped when not ``strict``).
    strict : `bool`, optional (default = `True`)
        A bad sentence is an error naming its file and line; with `False` it is skipped, logged and
        counted.
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        tag_scheme: str = "IOB2",
        output_scheme: str = "BIOES",
        num_columns: Optional[int] = None,
        pos_column: Optional[int] = None,
        span_labels: bool = False,
        lang: str = DEFAULT_LANG,
        invalid_tags: str = "repair",
        strict: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(token_indexers=token_indexers, lang=lang, strict=strict, **kwargs)
        if invalid_tags not in ("repair", "error"):
            raise ValueError(f"invalid_tags must be 'repair' or 'error', got {invalid_tags!r}")
        self.invalid_tags = invalid_tags
        self.tag_scheme = normalize_scheme(tag_scheme)
        if output_scheme.upper() not in OUTPUT_SCHEMES:
            raise ValueError(f"output_scheme must be one of {OUTPUT_SCHEMES}, got {output_scheme!r}")
        self.output_scheme = output_scheme.upper()
        self.num_columns = num_columns
        self.pos_column = pos_column
        self.span_labels = span_labels

    @property
    def label_scheme(self) -> Optional[str]:
        return "BIOES" if self.output_scheme == "BIOES" else "BIO"

    def _read_sentences(self, path: str, lang: str) -> Iterator:
        expected = self.num_columns
        repaired: List[int] = []  # first lines of the sentences whose tags were repaired
        yield from self._sentences(path, lang, expected, repaired)
        if repaired:
            logger.warning("repaired the tags of %d sentence(s) of %s that the %s scheme does not allow (lines %s): read as "
                           "conlleval does, an I- that continues nothing opening an entity (invalid_tags: error to stop instead)",
                           len(repaired), path, self.tag_scheme, ", ".join(map(str, repaired[:10])) + (" ..." if len(repaired) > 10 else ""))

    def _sentences(self, path: str, lang: str, expected, repaired: List[int]) -> Iterator:
        for first_line, block in read_blocks(path, encoding=self.encoding):
            rows = [(number, split_columns(line)) for number, line in block]
            rows = [(number, cols) for number, cols in rows if cols and cols[0] != "-DOCSTART-"]
            if not rows:
                continue
            if expected is None:
                # the file's column count comes from its first sentence whose lines agree on one: a malformed
                # first sentence is skipped alone, never taken as the rule for the rest of the file
                counts = {len(cols) for _, cols in rows}
                if len(counts) == 1 and min(counts) >= 2:
                    expected = counts.pop()
                else:
                    shortest = min(rows, key=lambda row: len(row[1]))
                    yield InputError(path, shortest[0], f"a token line needs at least a word and a tag, and the lines of a "
                                                        f"sentence the same number of columns; got {' '.join(shortest[1])!r}"
                                                        + _format_hint(block))
                    continue
                if self.pos_column is not None and not -expected <= self.pos_column < expected - 1:
                    # a setting that fits no line of the file: every sentence would be skipped
                    raise InputError(path, rows[0][0], f"pos_column {self.pos_column} is not a column of the file's "
                                                       f"{expected} (the last is the tag)")
            bad = next(((n, cols) for n, cols in rows if len(cols) != expected), None)
            if bad is not None:
                yield InputError(path, bad[0], f"expected {expected} columns, got {len(bad[1])}: {' '.join(bad[1])!r}"
                                 + _format_hint(block))
                continue
            words = [cols[0] for _, cols in rows]
            tags = [cols[-1] for _, cols in rows]
            try:
                spans = spans_from_tags(tags, self.tag_scheme)
            except TagSchemeError as error:
                try:
                    if self.invalid_tags != "repair":
                        raise
                    spans = spans_from_tags(tags, self.tag_scheme, lenient=True)
                    repaired.append(first_line)
                except TagSchemeError:
                    yield InputError(path, rows[error.index][0], f"invalid {self.tag_scheme} tag sequence: {error}"
                                     + _format_hint(block))
                    continue
            pos = [cols[self.pos_column] for _, cols in rows] if self.pos_column is not None else None
            yield self.text_to_instance(
                words,
                tags_from_spans(spans, len(words), self.output_scheme),
                pos,
                lang=lang,
                path=path,
                line=first_line,
                gold_spans=spans,
            )

    def text_to_instance(  # type: ignore[override]
        self,
        words: List[str],
        tags: Optional[List[str]] = None,
        pos_tags: Optional[List[str]] = None,
        lang: str = DEFAULT_LANG,
        path: str = "",
        line: int = 0,
        **extra,
    ) -> Instance:
        tokens = TextField([Token(w) for w in words], self.token_indexers)
        fields: Dict[str, Field] = {"tokens": tokens, "metadata": MetadataField(self.metadata(words, lang, path, line, **extra))}
        if tags is not None:
            fields["tags"] = SequenceLabelField(tags, tokens, label_namespace="labels")
        if pos_tags is not None:
            fields["pos_tags"] = SequenceLabelField(pos_tags, tokens, label_namespace="pos")
        spans = extra.get("gold_spans")
        if self.span_labels and spans is not None:
            fields["span_labels"] = AdjacencyField([(s, e) for s, e, _ in spans], tokens, [t for _, _, t in spans],
                                                   label_namespace="span_labels", padding_value=-1)
        return Instance(fields)

import logging
from typing import Dict, Iterator, List, Optional

from allennlp.data import DatasetReader, Instance
from allennlp.data.fields import MetadataField, TextField
from allennlp.data.token_indexers import TokenIndexer
from allennlp.data.tokenizers import Token

from allennlp_structkd.dataset_readers.common import (
    DEFAULT_LANG,
    InputError,
    StructKDReader,
    open_binary,
    read_lines_or_errors,
    split_columns,
)

logger = logging.getLogger(__name__)


@DatasetReader.register("structkd_unlabeled_text")
class UnlabeledTextReader(StructKDReader):
    """
    Unlabeled sentences for transfer sets: one sentence a line, tokens separated by spaces or tabs (a
    non-breaking space belongs to its word, as in the CoNLL readers).
    Files may be gzip-compressed (``.gz``) and given as glob patterns (see :mod:`.common`). Blank lines are
    skipped and counted in the log. A line that is not valid text in ``encoding``, or longer than ``max_tokens``
    tokens (a paragraph, a table row: no sentence), is an error naming its file and line, or, with
    ``strict: false``, that one line is skipped, logged and counted; the rest of the file is read either way.
    Fields: ``tokens``, ``metadata`` (``unlabeled: True``).

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
        How the words are indexed.
    max_tokens : `int`, optional (default = `512`)
        The longest sentence accepted (`None`: no limit; a teacher's cost grows with the square of a
        sentence's length, or faster).
    lang : `str`, optional (default = `DEFAULT_LANG`)
        Written into each instance's ``metadata["lang"]`` (a ``{lang: path}`` input sets it per file).
    strict : `bool`, optional (default = `True`)
        A bad line is an error naming its file and line; with `False` it is skipped, logged and counted.
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        max_tokens: Optional[int] = 512,
        lang: str = DEFAULT_LANG,
        strict: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(token_indexers=token_indexers, lang=lang, strict=strict, **kwargs)
        self.max_tokens = max_tokens

    def _count_sentences(self, path: str) -> int:
        """One sentence a line: its lines (blank ones counted too), by counting newlines."""
        count, last = 0, b"\n"
        with open_binary(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
                last = block[-1:]
        return count + (last != b"\n")

    def _read_sentences(self, path: str, lang: str) -> Iterator:
        blank = 0
        for number, line in read_lines_or_errors(path, self.encoding):
            if isinstance(line, InputError):
                yield line
                continue
            words = split_columns(line)
            if not words:
                blank += 1
                continue
            if self.max_tokens is not None and len(words) > self.max_tokens:
                yield InputError(path, number, f"{len(words)} tokens, more than max_tokens={self.max_tokens}")
                continue
            yield self.text_to_instance(words, lang=lang, path=path, line=number)
        if blank:
            logger.info("%s: %d blank line(s) skipped", path, blank)

    def text_to_instance(
        self, words: List[str], lang: str = DEFAULT_LANG, path: str = "", line: int = 0
    ) -> Instance:
        return Instance(
            {
                "tokens": TextField([Token(w) for w in words], self.token_indexers),
                "metadata": MetadataField(self.metadata(words, lang, path, line, unlabeled=True)),
            }
        )

"""
What every reader of the project shares: several languages at once, stable sentence ids, and
bad input that names its file and line.

**Several languages.** A reader's ``file_path`` (``train_data_path`` in a config) is either

* a plain path: every sentence gets the reader's ``lang`` (default ``"xx"``), or
* an object mapping languages to paths — in a config ``train_data_path: {es: "...", nl: "..."}``,
  or as a JSON string, e.g.
  ``train_data_path: std.manifestJsonMinified({es: "data/esp.train", nl: "data/ned.train"})``
  or, on the command line, ``-o '{"train_data_path": "{\\"es\\": \\"a.conll\\"}"}'``.

A path may be a glob pattern (``transfer/*.txt``: every matching file, in sorted order, with that path's
language), and a file ending in ``.gz`` is read through gzip. Languages are read in the order given; every instance's ``metadata`` holds ``words``, ``lang``,
``sentence_id`` (see :func:`sentence_id`), ``file`` and ``line`` (where the sentence starts).

**Bad input.** Errors are :class:`InputError` naming file, line and value. With ``strict: false``
a bad sentence is skipped instead, with a warning, and the reader logs how many it skipped per file.
"""
import glob
import gzip
import io
import json
import logging
import os
import re
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, cast

from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Instance
from allennlp.data.fields import TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer, TokenIndexer

from allennlp_structkd.keys import sequence_key
from allennlp_structkd.paths import SAMPLE_DATA
from allennlp_structkd.settings import reject_unknown_settings

logger = logging.getLogger(__name__)

DEFAULT_LANG = "xx"


class InputError(ConfigurationError):
    """Bad input data: names the file, the line (1-based) and the offending value."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.detail = message
        super().__init__(f"{path}, line {line}: {message}")


_SAID_SAMPLE: Set[str] = set()


def _say_if_sample_data(path: str) -> None:
    """A run on the configs' sample data (the defaults of their data variables) says so, once per file: a data
    variable left unset (or misspelt) must not pass for a run on one's own data."""
    real = os.path.realpath(path)
    if real in _SAID_SAMPLE or os.path.commonpath([real, os.path.realpath(SAMPLE_DATA)]) != os.path.realpath(SAMPLE_DATA):
        return
    _SAID_SAMPLE.add(real)
    logger.warning("reading the configs' sample data, %s (toy data, for trying a config out): set the config's data "
                   "variables (TAGGING_TRAIN, TAGGING_DEV, ... in docs/configuration.md) to read your own", path)


def sentence_id(lang: str, words: Iterable[str]) -> str:
    """A stable id for a sentence: the first 16 hex digits of SHA-256 over the JSON of ``[[lang], words]``
    (injective: ``["a b", "c"]`` and ``["a", "b c"]`` get different ids)."""
    return sequence_key([lang], words)


def parse_json_path(file_path):
    """
    The object of a data path given as an object (AllenNLP passes ``train_data_path: {...}``
    through as a dict) or written as JSON (it starts with ``{``), else None.
    """
    if isinstance(file_path, dict):
        return file_path
    text = str(file_path).strip()
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"data path looks like JSON but does not parse: {text!r} ({error})") from None


def parse_path_map(file_path: str, default_lang: str) -> List[Tuple[str, str]]:
    """``(lang, path)`` pairs from a plain path or a JSON ``{lang: path}`` object."""
    mapping = parse_json_path(file_path)
    if mapping is not None:
        text = str(file_path).strip()
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ConfigurationError(f"a JSON data path must map languages to paths, got {text!r}")
        pairs = [(str(lang), path) for lang, path in mapping.items()]
    else:
        pairs = [(default_lang, str(file_path))]
    return [(lang, match) for lang, path in pairs for match in expand_pattern(path, lang)]


def expand_pattern(path: str, lang: str) -> List[str]:
    """A path, or the files a glob pattern (``*``, ``?``, ``[...]``) matches, sorted; a pattern that matches no file is
    an error naming it."""
    if not glob.has_magic(path):
        return [path]
    matches = sorted(match for match in glob.glob(path) if os.path.isfile(match))
    if not matches:
        raise ConfigurationError(f"no data file matches {path!r} (language {lang!r})")
    return matches


def split_columns(line: str) -> List[str]:
    """
    The columns of a CoNLL token line: separated by spaces or tabs only. Other white space (a
    non-breaking space, say) is part of a word, not a column break.
    """
    return [column for column in re.split(r"[ \t]+", line) if column]


def read_lines(path: str, encoding: str = "utf-8") -> Iterator[Tuple[int, str]]:
    """
    ``(line number, text)`` of a file, 1-based, texts without their line end: ``\\n``, ``\\r\\n`` and
    a lone ``\\r`` (old Mac files) each end a line. A byte-order mark at the start is dropped (it would
    otherwise become part of the first word). Bytes that are not valid ``encoding`` raise
    :class:`InputError` naming the file, the line and the encoding.
    """
    for number, line in read_lines_or_errors(path, encoding):
        if isinstance(line, InputError):
            raise line
        yield number, line


def open_binary(path: str):
    """A file's bytes, through gzip when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_lines_or_errors(path: str, encoding: str = "utf-8") -> Iterator[Tuple[int, "str | InputError"]]:
    """:func:`read_lines`, where a line whose bytes are not valid ``encoding`` is an :class:`InputError` in its place
    (the rest of the file is still read): for readers that may skip that one line."""
    if "\n".encode(encoding) != b"\n":  # UTF-16, UTF-32: a line end is not the byte 0x0a, so lines are split as text
        yield from _read_text_lines(path, encoding)
        return
    number = 0
    with open_binary(path) as handle:
        for raw in handle:
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            for piece in raw.split(b"\r"):
                number += 1
                try:
                    line = piece.decode(encoding)
                except UnicodeDecodeError as error:
                    yield number, InputError(path, number, f"bytes {piece[error.start:error.end]!r} are not valid {encoding} "
                                                           "text; set the reader's 'encoding' (the original CoNLL-2002 files are "
                                                           "'latin-1')")
                    continue
                if number == 1:
                    line = line.lstrip("\ufeff")
                yield number, line


def _read_text_lines(path: str, encoding: str) -> Iterator[Tuple[int, "str | InputError"]]:
    """:func:`read_lines` for an encoding whose line ends are not single bytes: decoded first, then split."""
    number = 0
    with open(path, "rb") as raw, io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw,
                                                   encoding=encoding, newline="") as handle:
        try:
            for text in handle:  # newline="": \n, \r\n and \r each end a line, and are kept
                number += 1
                line = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\n", "\r")) else text
                yield number, line.lstrip("\ufeff") if number == 1 else line
        except UnicodeDecodeError as error:
            raise InputError(path, number + 1, f"bytes {error.object[error.start:error.end]!r} are not valid {encoding} "
                                               "text; set the reader's 'encoding'") from None


def read_blocks(path: str, is_separator: Callable[[str], bool] = lambda line: not line.strip(),
                encoding: str = "utf-8") -> Iterator[Tuple[int, List[Tuple[int, str]]]]:
    """
    Blank-line separated blocks of a file: ``(first line number, [(line number, text), ...])``,
    line numbers 1-based, texts without the newline (see :func:`read_lines`).
    """
    block: List[Tuple[int, str]] = []
    for number, line in read_lines(path, encoding):
        if is_separator(line):
            if block:
                yield block[0][0], block
                block = []
            continue
        block.append((number, line))
    if block:
        yield block[0][0], block


class StructKDReader(DatasetReader):
    """
    Base of the project's readers: a ``{lang: path}`` map or a plain path, ``strict`` handling of
    bad sentences, the files' ``encoding`` (default UTF-8; a byte-order mark is dropped), sharding
    for distributed training and data-loader workers.

    Subclasses implement ``_read_sentences(path, lang)``, yielding instances, raising
    :class:`InputError` for a bad sentence.
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        lang: str = DEFAULT_LANG,
        strict: bool = True,
        encoding: str = "utf-8",
        **kwargs,
    ) -> None:
        reject_unknown_settings(self, DatasetReader, kwargs)
        super().__init__(manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs)
        self.token_indexers = token_indexers or {"tokens": SingleIdTokenIndexer()}
        self.lang = lang
        self.strict = strict
        try:
            "".encode(encoding)
        except LookupError:
            raise ConfigurationError(f"unknown encoding {encoding!r} for the reader's 'encoding'") from None
        self.encoding = encoding
        self._sentence_counts: Dict[Tuple[str, int, int], int] = {}  # (file, size, mtime) -> count_sentences

    def count_sentences(self, path: str) -> int:
        """About how many sentences a file holds, counted without reading them: its blocks of lines between blank
        lines (what interleaving sources weighs each file by; bad sentences are counted too). Counted once a file
        version: every epoch's read weighs the files again."""
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._sentence_counts:
            self._sentence_counts[key] = self._count_sentences(path)
        return self._sentence_counts[key]

    def _count_sentences(self, path: str) -> int:
        """The blocks of non-blank lines of a file."""
        count, in_block = 0, False
        with open_binary(path) as handle:
            for line in handle:
                if line.strip():
                    count += not in_block
                    in_block = True
                else:
                    in_block = False
        return count

    def _read(self, file_path: str) -> Iterator[Instance]:
        sources = parse_path_map(file_path, self.lang)
        for lang, path in sources:
            if not os.path.isfile(path):
                raise ConfigurationError(f"data file for language {lang!r} not found: {path}")
            _say_if_sample_data(path)
        # one stream over all languages, sharded once (distributed workers, data-loader workers)
        stream = (instance for lang, path in sources for instance in self._read_checked(path, lang))
        yield from self.shard_iterable(stream)

    def _read_checked(self, path: str, lang: str) -> Iterator[Instance]:
        skipped = read = 0
        first: Optional[InputError] = None
        for item in self._read_sentences(path, lang):
            if isinstance(item, InputError):
                if self.strict:
                    raise item
                skipped += 1
                first = first or item
                logger.warning("skipping bad sentence (strict: false): %s", item)
                continue
            read += 1
            yield item
        if not read and not skipped:  # an empty file (or blank lines, or document markers only) is a wrong path
            raise ConfigurationError(f"{path} holds no sentences (language {lang!r}): it is empty, blank or only "
                                     "document markers; give a file with data")
        if skipped:
            logger.warning("skipped %d bad sentence(s) in %s (strict: false); read %d", skipped, path, read)
            assert first is not None
            if not read:  # a file of nothing but bad sentences is a wrong file or wrong settings, not noise
                raise InputError(path, first.line, f"every sentence of the file is bad ({skipped} skipped, none read); "
                                                   f"the first: {first.detail}")

    @property
    def label_scheme(self) -> Optional[str]:
        """The span scheme of the labels it writes (``BIOES``, ``BIO``), or None for plain tags (a teacher from
        elsewhere maps its labels into it)."""
        return None

    def _read_sentences(self, path: str, lang: str) -> Iterator:
        """Yield instances, or an :class:`InputError` for a sentence that cannot be read."""
        raise NotImplementedError

    @staticmethod
    def metadata(words: List[str], lang: str, path: str, line: int, **extra) -> Dict:
        return {
            "words": words,
            "lang": lang,
            "sentence_id": sentence_id(lang, words),
            "file": path,
            "line": line,
            **extra,
        }

    def apply_token_indexers(self, instance: Instance) -> None:
        cast(TextField, instance.fields["tokens"]).token_indexers = self.token_indexers


def check_heads(heads: List[int], path: str, lines: List[int], single_root: bool = False) -> Optional[InputError]:
    """Heads (0 = root) must be in range and form a tree rooted at 0 (no cycle); with ``single_root`` (PTB
    dependencies: one head word a sentence), exactly one word's head is 0."""
    n = len(heads)
    for i, head in enumerate(heads):
        if not 0 <= head <= n:
            return InputError(path, lines[i], f"head {head} of word {i + 1} is out of range 0..{n}")
        if head == i + 1:
            return InputError(path, lines[i], f"word {i + 1} is its own head")
    for i in range(n):
        seen = set()
        node = i + 1
        while node != 0:
            if node in seen:
                return InputError(path, lines[i], f"gold heads form a cycle through word {node}: heads {heads}")
            seen.add(node)
            node = heads[node - 1]
    roots = [i for i, head in enumerate(heads) if head == 0]  # a tree rooted at 0 has at least one
    if single_root and len(roots) > 1:
        return InputError(path, lines[roots[1]], f"a sentence needs exactly one word whose head is 0 (the root), this one "
                                                 f"has {len(roots)}: words {', '.join(str(i + 1) for i in roots[:5])}")
    return None


def training_languages(config: Dict) -> List[str]:
    """The languages of the training data: the keys of a ``{lang: path}`` map (or of its labeled and unlabeled parts);
    for a plain path its reader's ``lang`` (``xx``, no given language, by default)."""
    spec = parse_json_path(config.get("train_data_path", ""))
    if not isinstance(spec, dict):
        reader = config.get("dataset_reader", {})
        return [reader.get("base_reader", reader).get("lang", DEFAULT_LANG)]
    if set(spec) <= {"labeled", "unlabeled"}:
        found: List[str] = []
        for part in spec.values():
            inner = parse_json_path(part) if not isinstance(part, dict) else part
            found += [lang for lang in (inner or {DEFAULT_LANG: None}) if lang not in found]
        return found
    return list(spec)

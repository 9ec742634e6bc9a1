"""
The ``structkd_tagger`` spaCy component: a student distilled with allennlp-structkd, exported by
``python -m allennlp_structkd.export``, served with spaCy and numpy, its network run by PyTorch or, exported
with ``--onnx``, by ONNX Runtime (no PyTorch installed).

    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": "student/"})   # an exported student folder

By the student's kind it sets ``doc.ents`` (BIO/BIOES taggers), ``token.pos_`` (UPOS taggers: spaCy
keeps ``token.tag_`` for fine-grained tags such as XPOS, and its converters and scorer read them so),
``token.tag_`` (other taggers), or ``token.head`` and ``token.dep_`` (the sequence-labeling parser, which reads
``token.pos_`` set by a tagger before it), with confidences: ``token._.structkd_probs`` (every
label's exact CRF marginal, or softmax), ``token._.structkd_label``, ``span._.structkd_score`` (an
entity's mean token confidence), and the same as one array per document, ``doc._.structkd_probs``
(tokens x labels) with ``doc._.structkd_labels``.

Settings: ``model`` (an exported student folder; an AllenNLP archive is exported on the fly when
``allennlp_structkd`` is installed), ``lang`` (the language of the text, one the student was trained
on; default ``nlp.lang``), ``batch_size`` (sentences per model call), ``max_tokens`` (a longer
sentence is cut, with a warning), ``overwrite_ents`` (false: entities set earlier in the pipeline
are kept, as spaCy's ``ner`` keeps them), ``threads`` (CPU threads for the model calls, default 1;
0 keeps the backend's own count), ``backend`` (``auto``: ONNX Runtime where the folder has ``network.onnx``
and ONNX Runtime is installed, else PyTorch; ``onnx``; ``torch``). The model sees one sentence at a time, as it was trained: the document's
sentences when it has them, else cuts after sentence-final punctuation.

A malformed model is an error at ``add_pipe``. As with spaCy's own components, the model may instead
come at ``nlp.initialize()`` (``add_pipe("structkd_tagger")`` then
``nlp.get_pipe("structkd_tagger").initialize(model=PATH)``, or ``[initialize.components]`` in a
config); a pipeline initialised with no model at all is an error there, naming both ways. A pipeline saved with ``nlp.to_disk`` or
``nlp.to_bytes`` carries the student itself; building a pipeline from a saved config (``spacy.load``,
``Language.from_config``) takes the student from the saved pipeline, never from the ``model`` path
of the config, which may since have moved.
"""
import logging
import os
import shutil
import sys
import tempfile
from types import FrameType
from typing import Any, Dict, Iterable, Iterator, List, Optional

import numpy
import srsly
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

from structkd_spacy import chain, trees
from structkd_spacy.folder import FILES, OPTIONAL_FILES, StudentFormatError, read_spec, read_vocabularies
from structkd_spacy.inputs import Indexer
from structkd_spacy.networks import BACKENDS, Network, open_network
from structkd_spacy.spans import entities, is_span_label_set

UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X"}
SENTENCE_FINAL = {".", "!", "?", ";", "。", "؟", "…"}
STUDENT_FILES = FILES + OPTIONAL_FILES

logger = logging.getLogger(__name__)


def _token_probs(token: Token):
    probs, labels = token.doc._.structkd_probs, token.doc._.structkd_labels
    if probs is None or labels is None or numpy.isnan(probs[token.i, 0]):
        return None
    return dict(zip(labels, probs[token.i].tolist()))


def _token_label(token: Token):
    tags = token.doc._.structkd_tags
    return None if tags is None else tags[token.i]


def install_extensions() -> None:
    """The component's extensions, installed once, when a component is made (never on import)."""
    for name in ("structkd_probs", "structkd_labels", "structkd_tags"):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)
    if not Token.has_extension("structkd_probs"):
        Token.set_extension("structkd_probs", getter=_token_probs)
    if not Token.has_extension("structkd_label"):
        Token.set_extension("structkd_label", getter=_token_label)
    if not Span.has_extension("structkd_score"):
        Span.set_extension("structkd_score", default=None)


def _building_from_config() -> bool:
    """Whether this component is being made by ``Language.from_config`` (``spacy.load``), which restores it from disk
    or bytes afterwards."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "from_config" and frame.f_globals.get("__name__") == "spacy.language":
            return True
        frame = frame.f_back
    return False


@Language.factory(
    "structkd_tagger",
    default_config={"model": None, "lang": None, "batch_size": 32, "max_tokens": 256, "overwrite_ents": False, "threads": 1,
                    "backend": "auto"},
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag", "token.pos", "token.head", "token.dep",
             "doc._.structkd_probs", "doc._.structkd_labels", "doc._.structkd_tags", "span._.structkd_score"],
)
def make_structkd_tagger(nlp: Language, name: str, model: Optional[str], lang: Optional[str], batch_size: int,
                         max_tokens: int, overwrite_ents: bool, threads: int, backend: str) -> "StructKDTagger":
    for setting, value in (("batch_size", batch_size), ("max_tokens", max_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"structkd_tagger: {setting} must be a positive integer, got {value!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"structkd_tagger: threads must be a number of CPU threads, or 0 for the backend's own choice, "
                         f"got {threads!r}")
    if backend not in BACKENDS:
        raise ValueError(f"structkd_tagger: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"structkd_tagger: model must be the path of an exported student, got {model!r}")
    install_extensions()
    component = StructKDTagger(nlp, name, lang, batch_size, max_tokens, bool(overwrite_ents), threads, backend)
    if model is not None and not _building_from_config():
        component.load(str(model))
    elif model is not None:
        component.pending = str(model)  # read only if no saved pipeline restores the component
    return component


class StructKDTagger:
    """See the module docstring."""

    def __init__(self, nlp: Language, name: str, lang: Optional[str], batch_size: int = 32, max_tokens: int = 256,
                 overwrite_ents: bool = False, threads: int = 1, backend: str = "auto") -> None:
        self.name = name
        self.nlp_lang = nlp.lang
        self.requested_lang = lang
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.overwrite_ents = overwrite_ents
        self.threads = threads
        self.backend = backend
        self.pending: Optional[str] = None
        self.files: Dict[str, bytes] = {}  # the student's files, kept to save the pipeline
        self.spec: Optional[Dict] = None

    # -- loading ---------------------------------------------------------------------------------
    def load(self, path: str) -> "StructKDTagger":
        """Load an exported student folder (or export an AllenNLP archive first); errors name the path."""
        if os.path.isfile(path) or os.path.isfile(os.path.join(path, "config.json")) and not os.path.isfile(
                os.path.join(path, "student.json")):
            return self._load_archive(path)
        if not os.path.exists(path):
            raise ValueError(f"structkd_tagger: no exported student at {path} (the component's 'model' setting)")
        return self._load_files(self._read_folder(path), path)

    def _load_archive(self, path: str) -> "StructKDTagger":
        try:
            from allennlp_structkd.export import export
        except ImportError:
            raise ValueError(f"structkd_tagger: {path} is an AllenNLP model archive: export it first, where allennlp-structkd "
                             "is installed (python -m allennlp_structkd.export ARCHIVE FOLDER), and give the folder") from None
        from allennlp.common.checks import ConfigurationError

        folder = tempfile.mkdtemp(prefix="structkd-student-")
        try:
            try:
                export(path, os.path.join(folder, "student"))
            except ConfigurationError as error:  # not an archive, an empty file, unsafe members, non-finite weights
                raise ValueError(f"structkd_tagger: cannot use the model archive {path}: {error}") from None
            return self._load_files(self._read_folder(os.path.join(folder, "student")), path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _read_folder(path: str) -> Dict[str, bytes]:
        files = {}
        for name in STUDENT_FILES:
            if os.path.isfile(os.path.join(path, name)):
                with open(os.path.join(path, name), "rb") as handle:
                    files[name] = handle.read()
        return files

    def _load_files(self, files: Dict[str, bytes], where: str) -> "StructKDTagger":
        """The student from its files' bytes (read from a folder, or from a saved pipeline's bytes: untrusted, so only
        the student's own file names are accepted, never a path)."""
        unknown = sorted(name for name in files if name not in STUDENT_FILES)
        if unknown:
            raise ValueError(f"structkd_tagger: {where} holds files that are not a student's ({', '.join(map(repr, unknown[:5]))}); "
                             f"a student's files are {', '.join(STUDENT_FILES)}")
        if not all(isinstance(data, (bytes, bytearray)) for data in files.values()):
            raise ValueError(f"structkd_tagger: {where}: every student file must be bytes")
        folder = tempfile.mkdtemp(prefix="structkd-student-")
        try:
            for name, data in files.items():
                with open(os.path.join(folder, name), "wb") as handle:
                    handle.write(data)
            try:
                spec = read_spec(folder, where)
                self.vocabularies = read_vocabularies(folder, spec, where)
                self.network: Network = open_network(folder, spec, where, self.backend, self.threads)
                self.indexer = Indexer(spec, self.vocabularies, folder, where)
                self.spec = spec
            except StudentFormatError as error:
                self.spec = None
                raise ValueError(f"structkd_tagger: {error}") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.files = files
        self.pending = None
        self.lang = self.requested_lang or self.nlp_lang
        if self.lang not in spec["languages"] and "xx" not in spec["languages"]:  # xx: trained on text of no given language
            raise ValueError(f"structkd_tagger: the student in {where} serves {', '.join(spec['languages'])}, not "
                             f"{self.lang!r}: set the component's 'lang' (or use a pipeline of one of those languages)")
        self.labels = spec["labels"]
        self.is_span_model = is_span_label_set(self.labels)
        self.is_parser = spec["kind"] == "seq_label_parser"
        # a UPOS tagger (every label a UPOS tag, or the vocabulary's unknown entry) sets token.pos_, any other token.tag_
        self.is_upos = not self.is_span_model and set(self.labels) <= UPOS | {"@@UNKNOWN@@"}
        return self

    NO_MODEL = ("structkd_tagger has no model: give it at add_pipe (config={'model': PATH}) or at initialize "
                "(nlp.get_pipe(name).initialize(model=PATH)), PATH an exported student folder")

    def initialize(self, get_examples=None, *, nlp: Optional[Language] = None, model: Optional[str] = None) -> None:
        """spaCy's initialisation: the student of ``model`` (an exported folder, or an archive), else the one given at
        ``add_pipe``; none at all is an error naming both ways to give it."""
        if model is not None:
            self.load(str(model))
        elif self.spec is None and self.pending is None:
            raise ValueError(self.NO_MODEL)
        self._ready()

    def _ready(self) -> None:
        if self.spec is None:
            if self.pending is None:
                raise ValueError(self.NO_MODEL)
            self.load(self.pending)

    # -- spaCy's component API -------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], batch_size: Optional[int] = None) -> Iterator[Doc]:
        self._ready()
        batch_size = batch_size or self.batch_size
        buffer: List[Doc] = []
        for doc in stream:
            buffer.append(doc)
            if len(buffer) >= batch_size:
                yield from self._process(buffer)
                buffer = []
        if buffer:
            yield from self._process(buffer)

    def _sentences(self, doc: Doc) -> Iterator[List[int]]:
        """Token indices (non-space) of the model's inputs: one sentence each, cut at ``max_tokens`` with a warning."""
        if doc.has_annotation("SENT_START"):
            sentences = [[t.i for t in sent if not t.is_space] for sent in doc.sents]
        else:
            sentences, current = [], []
            for token in doc:
                if token.is_space:
                    continue
                current.append(token.i)
                if token.text in SENTENCE_FINAL:
                    sentences.append(current)
                    current = []
            sentences.append(current)
        for sentence in sentences:
            start = 0
            while len(sentence) - start > self.max_tokens:
                window = sentence[start : start + self.max_tokens]
                cut = max((k + 1 for k, i in enumerate(window) if doc[i].text in SENTENCE_FINAL), default=len(window))
                logger.warning("structkd_tagger: a sentence of %d tokens is cut at %d tokens (max_tokens) near token %d",
                               len(sentence), self.max_tokens, window[-1])
                yield window[:cut]
                start += cut
            if sentence[start:]:
                yield sentence[start:]

    def _process(self, docs: List[Doc]) -> List[Doc]:
        owners = [(d, chunk) for d, doc in enumerate(docs) for chunk in self._sentences(doc)]
        results = []
        for start in range(0, len(owners), self.batch_size):
            results += self._predict([[docs[d][i].text for i in chunk] for d, chunk in owners[start : start + self.batch_size]])
        for doc in docs:
            doc._.structkd_labels = list(self.labels)
            doc._.structkd_probs = numpy.full((len(doc), len(self.labels)), numpy.nan, dtype=numpy.float32)
            doc._.structkd_tags = [None] * len(doc)
        found: Dict[int, List[Any]] = {d: [] for d in range(len(docs))}
        for (d, chunk), (tags, probs) in zip(owners, results):
            doc = docs[d]
            doc._.structkd_probs[chunk] = probs
            names = [self.labels[t] for t in tags]
            for i, label in zip(chunk, names):
                doc._.structkd_tags[i] = label
            if self.is_parser:
                self._set_parse(doc, chunk, tags, probs)
            elif self.is_span_model:
                confidences = probs[numpy.arange(len(tags)), tags]
                for label, start, end in entities(names):
                    span = Span(doc, chunk[start], chunk[end] + 1, label=label)
                    span._.structkd_score = float(confidences[start : end + 1].mean())
                    found[d].append(span)
            elif self.is_upos:  # UPOS belongs in token.pos_ (spaCy's tagger keeps token.tag_ for fine-grained tags)
                for i, label in zip(chunk, names):
                    if label in UPOS:
                        doc[i].pos_ = label
            else:
                for i, label in zip(chunk, names):
                    doc[i].tag_ = label
        if self.is_span_model and not self.is_parser:
            for d, doc in enumerate(docs):
                ours = filter_spans(found[d])
                if self.overwrite_ents:
                    doc.ents = ours
                else:  # entities set earlier in the pipeline are kept, as spaCy's ner keeps them
                    taken = {i for entity in doc.ents for i in range(entity.start, entity.end)}
                    doc.ents = list(doc.ents) + [e for e in ours if not taken.intersection(range(e.start, e.end))]
        return docs

    def _predict(self, sentences: List[List[str]]):
        """``[(tag ids (n,), probs (n, L))]`` per sentence: Viterbi and exact marginals (CRF), or argmax and softmax."""
        assert self.spec is not None  # the student is loaded before the component tags
        arrays, mask = self.indexer.arrays(sentences)
        scores = self.network.scores(arrays, mask)
        if self.network.crf is not None:
            tags = chain.viterbi(scores, *self.network.crf, mask)
            probs, _ = chain.marginals(scores, *self.network.crf, mask)
        else:
            probs = chain.softmax(scores)
            tags = probs.argmax(axis=-1)
        return [(tags[b, : len(s)], probs[b, : len(s)].astype(numpy.float32)) for b, s in enumerate(sentences)]

    def _set_parse(self, doc: Doc, chunk: List[int], tags, probs) -> None:
        pos = [doc[i].pos_ for i in chunk]
        missing = [doc[i].text for i, tag in zip(chunk, pos) if not tag]
        if missing:
            raise ValueError(f"structkd_tagger: this parser reads each word's PoS tag (token.pos_), and {len(missing)} words "
                             f"have none (e.g. {missing[0]!r}): put a component that sets token.pos_ before it")
        heads, deprels = trees.parse(probs, tags.tolist(), self.labels, pos)
        for position, i in enumerate(chunk):
            head = heads[position]
            doc[i].head = doc[chunk[head - 1]] if head > 0 else doc[i]
            doc[i].dep_ = "ROOT" if head == 0 else deprels[position]

    def score(self, examples, **kwargs) -> Dict:
        """spaCy's scores for what the component sets: ``ents_*`` (span taggers), ``pos_acc`` (UPOS taggers),
        ``tag_acc`` (other taggers), ``dep_uas`` and ``dep_las`` (the parser)."""
        self._ready()
        if self.is_parser:
            return Scorer.score_deps(examples, "dep", getter=lambda token, attr: getattr(token, attr),
                                     ignore_labels=("p", "punct"), **kwargs)
        if self.is_span_model:
            return Scorer.score_spans(examples, "ents", **kwargs)
        return Scorer.score_token_attr(examples, "pos" if self.is_upos else "tag", **kwargs)

    # -- serialization: the student travels with the pipeline ----------------------------------------
    def to_bytes(self, *, exclude=tuple()) -> bytes:
        self._ready()
        return srsly.msgpack_dumps({"files": self.files})

    def from_bytes(self, data: bytes, *, exclude=tuple()) -> "StructKDTagger":
        try:
            message = srsly.msgpack_loads(data)
        except Exception as error:  # noqa: BLE001 (msgpack raises several kinds for damaged bytes)
            raise ValueError(f"structkd_tagger: the pipeline's bytes are not a saved component ({error})") from None
        files = message.get("files") if isinstance(message, dict) else None
        if not isinstance(files, dict):
            raise ValueError("structkd_tagger: the pipeline's bytes hold no student files")
        return self._load_files(files, "the pipeline's bytes")

    def to_disk(self, path, *, exclude=tuple()) -> None:
        self._ready()
        os.makedirs(path, exist_ok=True)
        for name, data in self.files.items():
            target = os.path.join(path, name)
            with open(target + ".tmp", "wb") as handle:
                handle.write(data)
            os.replace(target + ".tmp", target)

    def from_disk(self, path, *, exclude=tuple()) -> "StructKDTagger":
        """Loads the student saved in ``path`` (never the ``model`` path of config.cfg)."""
        return self.load(str(path))


__all__ = ["make_structkd_tagger", "StructKDTagger", "entities", "install_extensions"]

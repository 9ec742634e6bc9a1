"""
The ``structkd_tagger`` spaCy component: a distilled AllenNLP tagger or parser inside a spaCy
pipeline. Registered through the ``spacy_factories`` entry point of ``setup.py``, so that after
installing the project, in a fresh interpreter, ``nlp.add_pipe("structkd_tagger", config={"model":
"runs/student/model.tar.gz"})`` works without importing anything of ours first. Its ``Doc``,
``Token`` and ``Span`` extensions are installed when the factory first runs, not on import.

It loads an AllenNLP model archive of this project (it needs allennlp and allennlp_structkd at
inference: the archive is the single, exact artefact that training produced) and, by the model's
kind, sets:

* taggers over BIO/BIOES labels (``structkd_crf_tagger``, ``structkd_maxent_tagger``,
  ``structkd_span_ner``): ``doc.ents`` (invalid label sequences repaired deterministically by the
  conlleval chunk rules: an ``I-``/``E-`` without its ``B-`` opens a span), each entity's
  ``span._.structkd_score`` (mean exact marginal of its tokens), and ``token.ent_iob_``/``ent_type_``;
* other taggers (e.g. UPOS): ``token.tag_``, and ``token.pos_`` when the label is a UPOS tag;
* parsers: ``token.head`` and ``token.dep_`` (0 = the sentence's root);

plus ``token._.structkd_probs`` (``{label: probability}`` of the exact CRF marginals, or the
softmax) and ``token._.structkd_label``. The confidences are kept once per document, as an array
``doc._.structkd_probs`` (tokens x labels, NaN for whitespace tokens) with its column names in
``doc._.structkd_labels``; the token attributes read from it, so a pipeline that never looks at
them does not pay for building one dictionary per token. Several languages: the ``lang`` of the config is passed to
the model (one multilingual student serves them all). Batching: ``nlp.pipe(texts, batch_size=...)``.
``cuda_device`` -1 runs on the CPU (the default), >= 0 on that GPU. ``threads`` (default 1) is the number
of CPU threads its model runs on: for small students one thread is fastest (torch's own default, one
per core, spends more on coordination than on the work); 0 keeps torch's choice. The process's
thread count is set for the component's model calls only and restored after.

The model sees one sentence at a time (batched), as it was trained: a sentence's labels never
depend on its neighbours. Sentences are the document's own where it has boundaries (a sentencizer
or parser before this component), else the text is cut after sentence-final punctuation
(``. ! ? ;``). A sentence longer than ``max_tokens`` is cut (at its last sentence-final
punctuation inside the limit when there is one), with a warning, so that a 100,000-character
run-on text neither exhausts memory nor exceeds a model's maximum length.

Entities set earlier in the pipeline (an ``entity_ruler``, say) are kept, and this component's
entities fill the tokens they leave, as spaCy's own ``ner`` does; ``overwrite_ents: true`` replaces
them instead.

**What a saved pipeline contains.** ``nlp.to_disk(path)`` writes the model archive itself into
``path/<component name>/model.tar.gz``; ``spacy.load(path)`` (and a wheel made by ``spacy package``)
loads that copy, never the ``model`` path of ``config.cfg``, which may be gone. The model is loaded
once: when the component is first used, or by ``from_disk``.
"""
import logging
import os
import shutil
from typing import Iterable, Iterator, List, Optional

import numpy

from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

from allennlp_structkd.dataset_readers.tag_schemes import entities, is_span_label_set

UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X"}
ARCHIVE_NAME = "model.tar.gz"
SENTENCE_FINAL = {".", "!", "?", ";", "。", "؟", "…"}

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
    """The component's extensions (``doc._.structkd_probs`` ...), installed once, when a component is made."""
    for name in ("structkd_probs", "structkd_labels", "structkd_tags"):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)
    if not Token.has_extension("structkd_probs"):
        Token.set_extension("structkd_probs", getter=_token_probs)
    if not Token.has_extension("structkd_label"):
        Token.set_extension("structkd_label", getter=_token_label)
    if not Span.has_extension("structkd_score"):
        Span.set_extension("structkd_score", default=None)


@Language.factory(
    "structkd_tagger",
    default_config={"model": None, "lang": None, "batch_size": 32, "cuda_device": -1, "max_tokens": 256,
                    "overwrite_ents": False, "threads": 1},
    # what it may set, by the model's kind: entities (BIO/BIOES taggers), tags (other taggers) or a parse
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag", "token.pos", "token.head", "token.dep",
             "doc._.structkd_probs", "doc._.structkd_labels", "doc._.structkd_tags", "span._.structkd_score"],
)
def make_structkd_tagger(nlp: Language, name: str, model: Optional[str], lang: Optional[str], batch_size: int,
                         cuda_device: int, max_tokens: int, overwrite_ents: bool, threads: int) -> "StructKDTagger":
    for setting, value in (("batch_size", batch_size), ("max_tokens", max_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"structkd_tagger: {setting} must be a positive integer, got {value!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"structkd_tagger: threads must be a number of CPU threads, or 0 for torch's own choice, got {threads!r}")
    if isinstance(cuda_device, bool) or not isinstance(cuda_device, int) or cuda_device < -1:
        raise ValueError(f"structkd_tagger: cuda_device must be -1 (CPU) or a GPU index, got {cuda_device!r}")
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"structkd_tagger: model must be the path of a model archive, got {model!r}")
    install_extensions()
    return StructKDTagger(nlp, name, model, lang or nlp.lang, batch_size, cuda_device, max_tokens, bool(overwrite_ents),
                          threads)


class StructKDTagger:
    def __init__(self, nlp: Language, name: str, model: Optional[str], lang: str, batch_size: int = 32,
                 cuda_device: int = -1, max_tokens: int = 256, overwrite_ents: bool = False, threads: int = 1) -> None:
        self.name = name
        self.overwrite_ents = overwrite_ents
        self.threads = threads
        self.lang = lang
        self.batch_size = batch_size
        self.cuda_device = cuda_device
        self.max_tokens = max_tokens
        # loaded on first use or by from_disk: spacy.load builds the component from config.cfg,
        # whose path may be gone, and then reads the archive saved inside the pipeline
        self.archive_path = None if model is None else str(model)
        self._predictor = None

    # -- loading ------------------------------------------------------------------------------
    @property
    def allennlp_model(self):
        """The AllenNLP model (loaded on first use). Not ``model``: spaCy reads that name as a thinc model."""
        return self._loaded()._model

    def _loaded(self):
        if self._predictor is None:
            if self.archive_path is None:
                raise ValueError("structkd_tagger has no model: add it with config={'model': PATH}")
            self._load(self.archive_path)
        return self._predictor

    def _load(self, path: str) -> None:
        if os.path.isdir(path):
            path = os.path.join(path, ARCHIVE_NAME)
        if not os.path.isfile(path):
            raise ValueError(f"structkd_tagger: no model archive at {path} (the component's 'model' setting)")
        import allennlp_structkd  # noqa: F401  (registers the models)
        from allennlp.models.archival import load_archive
        from allennlp.predictors import Predictor

        archive = load_archive(path, cuda_device=self.cuda_device)
        self._predictor = Predictor.from_archive(archive)
        self.archive_path = path
        model = archive.model
        self.is_parser = model.default_predictor == "structkd_parser"
        from allennlp_structkd.models.seq_label_parser import SequenceLabelingParser

        # a graph parser that embeds PoS reads them; a sequence-labeling parser decodes its labels with them
        self.needs_pos = self.is_parser and (getattr(model, "reads_pos", False) or isinstance(model, SequenceLabelingParser))
        labels = getattr(model, "labels", [])
        self.is_span_model = is_span_label_set(labels)
        from allennlp_structkd.models.tagger import SequenceTagger

        # taggers run straight through the model (tensors in, arrays out): the predictor's JSON
        # round trip turns every token's distribution into Python lists, which costs more than the model
        self._direct = isinstance(model, SequenceTagger)

    # -- spaCy's component API ----------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], batch_size: Optional[int] = None) -> Iterator[Doc]:
        self._loaded()
        batch_size = batch_size or self.batch_size
        buffer: List[Doc] = []
        for doc in stream:
            buffer.append(doc)
            if len(buffer) >= batch_size:
                yield from self._process(buffer)
                buffer = []
        if buffer:
            yield from self._process(buffer)

    def _chunks(self, doc: Doc) -> Iterator[List[int]]:
        """
        Token indices (non-space) of the model's inputs: one sentence each, as the models were trained
        (a sentence's labels never depend on its neighbours), from the doc's sentence boundaries where
        it has them, else cut after sentence-final punctuation. A sentence longer than ``max_tokens``
        is cut, with a warning.
        """
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
            if len(sentence) > self.max_tokens:
                yield from self._split_long(doc, sentence)
            elif sentence:
                yield sentence

    def _split_long(self, doc: Doc, tokens: List[int]) -> List[List[int]]:
        """A sentence longer than max_tokens: pieces cut after its last sentence-final punctuation within the limit."""
        pieces, start = [], 0
        while len(tokens) - start > self.max_tokens:
            window = tokens[start : start + self.max_tokens]
            cut = max((k + 1 for k, i in enumerate(window) if doc[i].text in SENTENCE_FINAL), default=None)
            cut = cut or len(window)
            logger.warning("structkd_tagger: a sentence of %d tokens is cut at %d tokens (max_tokens) near token %d; "
                           "entities across the cut may be split", len(tokens), self.max_tokens, window[-1])
            pieces.append(window[:cut])
            start += cut
        pieces.append(tokens[start:])
        return pieces

    def _process(self, docs: List[Doc]) -> List[Doc]:
        """The docs' sentences through the model, on ``threads`` CPU threads (the process's count is restored after)."""
        import torch

        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return self._process_batch(docs)
        finally:
            torch.set_num_threads(previous)

    def _process_batch(self, docs: List[Doc]) -> List[Doc]:
        requests, owners = [], []
        for d, doc in enumerate(docs):
            for chunk in self._chunks(doc):
                request = {"tokens": [doc[i].text for i in chunk], "lang": self.lang}
                if self.needs_pos:
                    missing = [doc[i].text for i in chunk if not doc[i].pos_]
                    if missing:
                        raise ValueError(f"structkd_tagger: this parser reads each word's PoS tag (token.pos_), and "
                                         f"{len(missing)} words have none (e.g. {missing[0]!r}): put a component that sets "
                                         "token.pos_ (a UPOS tagger) before it in the pipeline")
                    request["upos"] = [doc[i].pos_ for i in chunk]
                requests.append(request)
                owners.append((d, chunk))
        if self.is_parser:
            results = []
            for start in range(0, len(requests), self.batch_size):
                results += self._predictor.predict_batch_json(requests[start : start + self.batch_size])
            for (d, chunk), result in zip(owners, results):
                self._set_parse(docs[d], chunk, result)
            return docs
        return self._tag(docs, requests, owners)

    def _predict_tags(self, requests):
        """``(label names, [(tag ids (n,), probs (n, L))] per request)``."""
        import torch
        from allennlp.data import Batch
        from allennlp.nn import util

        model = self.allennlp_model
        if not self._direct:  # e.g. the span NER model: its predictor's output, as arrays
            results = []
            for start in range(0, len(requests), self.batch_size):
                results += self._predictor.predict_batch_json(requests[start : start + self.batch_size])
            labels = list(model.labels)
            index = {label: i for i, label in enumerate(labels)}
            rows = []
            for result in results:
                tag_ids = numpy.array([index[t] for t in result["tags"]], dtype=numpy.int64)
                if "probs" in result:
                    probs = numpy.asarray(result["probs"], dtype=numpy.float32).reshape(len(tag_ids), len(labels))
                else:  # a model without confidences: one-hot
                    probs = numpy.eye(len(labels), dtype=numpy.float32)[tag_ids]
                rows.append((tag_ids, probs))
            return labels, rows
        rows = []
        for start in range(0, len(requests), self.batch_size):
            batch = Batch([self._predictor.instance(r) for r in requests[start : start + self.batch_size]])
            batch.index_instances(model.vocab)
            with torch.no_grad():
                output = model(**util.move_to_device(batch.as_tensor_dict(), model._get_prediction_device()))
            tags = output["tags"].cpu().numpy()
            probs = output["probs"].float().cpu().numpy()
            for row, request in enumerate(requests[start : start + self.batch_size]):
                n = len(request["tokens"])
                rows.append((tags[row, :n], probs[row, :n]))
        return model.labels, rows

    def _tag(self, docs: List[Doc], requests, owners) -> List[Doc]:
        """Taggers: tags, confidences and spans written per doc."""
        labels, rows = self._predict_tags(requests)
        for doc in docs:
            doc._.structkd_labels = list(labels)
            doc._.structkd_probs = numpy.full((len(doc), len(labels)), numpy.nan, dtype=numpy.float32)
            doc._.structkd_tags = [None] * len(doc)
        entities = {d: [] for d in range(len(docs))}
        for (d, chunk), (tag_ids, probs) in zip(owners, rows):
            doc, n = docs[d], len(chunk)
            doc._.structkd_probs[chunk] = probs
            chunk_tags = [labels[t] for t in tag_ids.tolist()]
            for i, label in zip(chunk, chunk_tags):
                doc._.structkd_tags[i] = label
            if self.is_span_model:
                entities[d] += self._spans(doc, chunk, chunk_tags, probs[numpy.arange(n), tag_ids])
            else:
                for i, label in zip(chunk, chunk_tags):
                    doc[i].tag_ = label
                    if label in UPOS:
                        doc[i].pos_ = label
        if self.is_span_model:
            for d, doc in enumerate(docs):
                ours = filter_spans(entities[d])
                if self.overwrite_ents:
                    doc.ents = ours
                else:  # entities set earlier in the pipeline (an entity_ruler) are kept, as spaCy's ner keeps them
                    taken = {i for entity in doc.ents for i in range(entity.start, entity.end)}
                    doc.ents = list(doc.ents) + [e for e in ours if not taken.intersection(range(e.start, e.end))]
        return docs

    @staticmethod
    def _spans(doc: Doc, chunk: List[int], tags: List[str], confidences) -> List[Span]:
        """Entity spans of one chunk (the predictor's reading of tags), scored by their tokens' mean confidence."""
        spans = []
        for label, start, end in entities(tags):
            entity = Span(doc, chunk[start], chunk[end] + 1, label=label)
            entity._.structkd_score = float(confidences[start : end + 1].mean())
            spans.append(entity)
        return spans

    def _set_parse(self, doc: Doc, chunk: List[int], result) -> None:
        heads = result["predicted_heads"]
        deps = result["predicted_dependencies"]
        for position, i in enumerate(chunk):
            head = heads[position]
            doc[i].head = doc[chunk[head - 1]] if head > 0 else doc[i]
            doc[i].dep_ = "ROOT" if head == 0 else deps[position]

    # -- serialization ------------------------------------------------------------------------
    def to_disk(self, path, *, exclude=tuple()) -> None:
        """Writes the model archive itself into ``path``: a saved pipeline needs nothing outside it."""
        os.makedirs(path, exist_ok=True)
        if self.archive_path is None:
            return
        source = os.path.join(self.archive_path, ARCHIVE_NAME) if os.path.isdir(self.archive_path) else self.archive_path
        if not os.path.isfile(source):
            raise ValueError(f"structkd_tagger: cannot save the pipeline: its model archive {source} is gone")
        target = os.path.join(path, ARCHIVE_NAME)
        if os.path.abspath(source) != os.path.abspath(target):
            shutil.copyfile(source, target + ".tmp")
            os.replace(target + ".tmp", target)

    def from_disk(self, path, *, exclude=tuple()) -> "StructKDTagger":
        """Loads the archive saved in ``path`` (never the ``model`` path of config.cfg)."""
        archive = os.path.join(path, ARCHIVE_NAME)
        if not os.path.isfile(archive):
            raise ValueError(f"structkd_tagger: the saved pipeline has no model archive at {archive}")
        self._predictor = None
        self._load(archive)
        return self

"""
The ``structkd_tagger`` spaCy component.

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
``cuda_device`` -1 runs on the CPU (the default), >= 0 on that GPU. Documents are split into chunks of
at most ``max_tokens`` tokens, so that a 100,000-character document neither exhausts memory nor
exceeds a model's maximum length.
"""
import os
import shutil
from typing import Iterable, Iterator, List, Optional

import numpy

from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X"}
ARCHIVE_NAME = "model.tar.gz"



def _token_probs(token: Token):
    probs, labels = token.doc._.structkd_probs, token.doc._.structkd_labels
    if probs is None or labels is None or numpy.isnan(probs[token.i, 0]):
        return None
    return dict(zip(labels, probs[token.i].tolist()))


def _token_label(token: Token):
    tags = token.doc._.structkd_tags
    return None if tags is None else tags[token.i]


for _name in ("structkd_probs", "structkd_labels", "structkd_tags"):
    Doc.set_extension(_name, default=None, force=True)
Token.set_extension("structkd_probs", getter=_token_probs, force=True)
Token.set_extension("structkd_label", getter=_token_label, force=True)
Span.set_extension("structkd_score", default=None, force=True)


@Language.factory(
    "structkd_tagger",
    default_config={"model": None, "lang": None, "batch_size": 32, "cuda_device": -1, "max_tokens": 256},
)
def make_structkd_tagger(nlp: Language, name: str, model: Optional[str], lang: Optional[str], batch_size: int,
                         cuda_device: int, max_tokens: int) -> "StructKDTagger":
    return StructKDTagger(nlp, name, model, lang or nlp.lang, batch_size, cuda_device, max_tokens)


class StructKDTagger:
    def __init__(self, nlp: Language, name: str, model: Optional[str], lang: str, batch_size: int = 32,
                 cuda_device: int = -1, max_tokens: int = 256) -> None:
        self.name = name
        self.lang = lang
        self.batch_size = batch_size
        self.cuda_device = cuda_device
        self.max_tokens = max_tokens
        self.archive_path = model
        self._predictor = None
        if model is not None:
            self._load(model)

    # -- loading ------------------------------------------------------------------------------
    def _load(self, path: str) -> None:
        if os.path.isdir(path):
            path = os.path.join(path, ARCHIVE_NAME)
        if not os.path.isfile(path):
            raise ValueError(f"structkd_tagger: no model archive at {path}")
        import allennlp_structkd  # noqa: F401  (registers the models)
        from allennlp.models.archival import load_archive
        from allennlp.predictors import Predictor

        archive = load_archive(path, cuda_device=self.cuda_device)
        self._predictor = Predictor.from_archive(archive)
        self.archive_path = path
        model = archive.model
        self.is_parser = hasattr(model, "decode_trees") or model.default_predictor == "structkd_parser"
        labels = getattr(model, "labels", [])
        self.is_span_model = any(label[:2] in ("B-", "I-", "E-", "S-") for label in labels)
        from allennlp_structkd.models.tagger import SequenceTagger

        # taggers run straight through the model (tensors in, arrays out): the predictor's JSON
        # round trip turns every token's distribution into Python lists, which costs more than the model
        self._direct = isinstance(model, SequenceTagger)

    # -- spaCy's component API ----------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], batch_size: Optional[int] = None) -> Iterator[Doc]:
        if self._predictor is None:
            raise ValueError("structkd_tagger has no model: add it with config={'model': PATH}")
        batch_size = batch_size or self.batch_size
        buffer: List[Doc] = []
        for doc in stream:
            buffer.append(doc)
            if len(buffer) >= batch_size:
                yield from self._process(buffer)
                buffer = []
        if buffer:
            yield from self._process(buffer)

    def _chunks(self, doc: Doc):
        """Token ranges of at most max_tokens non-space tokens (sentence boundaries when known)."""
        words = [t.i for t in doc if not t.is_space]
        for start in range(0, len(words), self.max_tokens):
            yield words[start : start + self.max_tokens]

    def _process(self, docs: List[Doc]) -> List[Doc]:
        requests, owners = [], []
        for d, doc in enumerate(docs):
            for chunk in self._chunks(doc):
                request = {"tokens": [doc[i].text for i in chunk], "lang": self.lang}
                if self.is_parser:
                    request["upos"] = [doc[i].pos_ or "X" for i in chunk]
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

        model = self._predictor._model
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
            batch = Batch([self._predictor._json_to_instance(r) for r in requests[start : start + self.batch_size]])
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
                doc.ents = filter_spans(entities[d])
        return docs

    @staticmethod
    def _spans(doc: Doc, chunk: List[int], tags: List[str], confidences) -> List[Span]:
        """Entity spans of one chunk by the conlleval chunk rules, scored by their tokens' mean confidence."""
        from seqeval.metrics.sequence_labeling import get_entities

        spans = []
        for label, start, end in get_entities(tags):
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
        os.makedirs(path, exist_ok=True)
        if self.archive_path is not None:
            shutil.copyfile(self.archive_path, os.path.join(path, ARCHIVE_NAME))

    def from_disk(self, path, *, exclude=tuple()) -> "StructKDTagger":
        archive = os.path.join(path, ARCHIVE_NAME)
        if os.path.isfile(archive):
            self._load(archive)
        return self

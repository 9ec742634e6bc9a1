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
softmax) and ``token._.structkd_label``. Several languages: the ``lang`` of the config is passed to
the model (one multilingual student serves them all). Batching: ``nlp.pipe(texts, batch_size=...)``.
``cuda_device`` -1 runs on the CPU (the default), >= 0 on that GPU. Documents are split into chunks of
at most ``max_tokens`` tokens, so that a 100,000-character document neither exhausts memory nor
exceeds a model's maximum length.
"""
import os
import shutil
from typing import Iterable, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X"}
ARCHIVE_NAME = "model.tar.gz"

for _cls, _name in ((Token, "structkd_probs"), (Token, "structkd_label"), (Span, "structkd_score")):
    if not _cls.has_extension(_name):
        _cls.set_extension(_name, default=None)


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
        results = []
        for start in range(0, len(requests), self.batch_size):
            results += self._predictor.predict_batch_json(requests[start : start + self.batch_size])
        entities = {d: [] for d in range(len(docs))}
        for (d, chunk), result in zip(owners, results):
            doc = docs[d]
            if self.is_parser:
                self._set_parse(doc, chunk, result)
            else:
                entities[d] += self._set_tags(doc, chunk, result)
        if self.is_span_model:
            for d, doc in enumerate(docs):
                doc.ents = filter_spans(entities[d])
        return docs

    def _set_tags(self, doc: Doc, chunk: List[int], result) -> List[Span]:
        labels = result.get("labels")
        for position, i in enumerate(chunk):
            token = doc[i]
            label = result["tags"][position]
            token._.structkd_label = label
            if labels is not None and "probs" in result:
                token._.structkd_probs = dict(zip(labels, result["probs"][position]))
            if not self.is_span_model:
                token.tag_ = label
                if label in UPOS:
                    token.pos_ = label
        spans = []
        if self.is_span_model:
            for span in result.get("spans", []):
                start, end = chunk[span["start"]], chunk[span["end"]]
                entity = Span(doc, start, end + 1, label=span["label"])
                entity._.structkd_score = span["score"]
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

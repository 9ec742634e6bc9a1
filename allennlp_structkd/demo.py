"""
A small local web page: type a sentence, see the teacher's and the student's predictions side by
side, rendered with displaCy (entities, or tags and dependencies), with the time each model took.

    python -m allennlp_structkd.demo --teacher runs/demo/teacher.hf \\
        --student runs/demo/student_struct_kd/model.tar.gz [--port 8000] [--lang en]

Either model may be a project archive, a student folder exported for spaCy (``allennlp_structkd.export``;
served by the ``structkd_tagger`` component) or a Hugging Face token-classification folder (``make demo``'s
teacher, ``runs/demo/teacher.hf``, is one). Then open http://127.0.0.1:8000/ . The page is rendered on the server (no JavaScript): the form's
GET request ``/?sentence=...&lang=...`` returns the predictions. It listens on 127.0.0.1 only.

The page says which models are loaded and which languages the student was trained on; a sentence in
another language is refused (HTTP 400), as the spaCy component refuses it. Each model's time is the
median of ``REPEATS`` runs on the sentence, the models warmed up at start. ``POST /api/predict`` with a
JSON body ``{"sentence": ..., "lang": ...}`` answers the same predictions as JSON.

Requests are served in parallel, each model by one of ``--workers`` loaded copies (a slow request
does not hold up the others); a sentence longer than ``--max-chars`` characters is refused with
HTTP 413 and an unknown language code with HTTP 400, on the page with its form. Entities are coloured
by type, with their confidence (exact CRF marginals) beside the rendering; a parser needs each word's
PoS tag, typed as ``word/UPOS``.
"""
import argparse
import copy
import dataclasses
import html
import json
import logging
import os
import queue
import statistics
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.predictors import Predictor
from spacy import displacy

import allennlp_structkd  # noqa: F401
from allennlp_structkd.archives import load_model_archive
from allennlp_structkd.dataset_readers.tag_schemes import entities, is_span_label_set
from allennlp_structkd.kd.protocol import KDTeacher
from allennlp_structkd.models.finite_weights import FiniteWeightsModel
from allennlp_structkd.predictors.structkd_tagger import check_lang, tokenize

logger = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>allennlp-structkd: teacher and student</title>
<style>body{{font-family:sans-serif;margin:2em}} .models{{display:flex;gap:2em}} .model{{flex:1;border:1px solid #ccc;
padding:1em;border-radius:6px}} h2{{margin-top:0}} .time{{color:#555}} textarea{{width:100%;font-size:1.1em}}</style>
</head><body>
<h1>Structural knowledge distillation: teacher and student</h1>
<p class="about">{about}</p>
<form method="get" action="/"><textarea name="sentence" rows="2" placeholder="{example}">{sentence}</textarea>
<p>language <input name="lang" value="{lang}" size="4"> <button type="submit">Predict</button>
<a href="{example_link}">try an example</a></p></form>
{error}<div class="models">{panels}</div>
</body></html>"""


REPEATS = 5  # runs of each model on a sentence; the page shows their median
EXAMPLES = {"es": "Juan visitó Madrid con la ONU .", "nl": "Jan bezocht Amsterdam met de VN .",
            "en": "John visited the old city of Madrid last week ."}
EXAMPLE = "John visited Madrid ."


class SentenceTooLong(ValueError):
    """A sentence over ``max_chars``: HTTP 413."""


class HuggingFaceTagger:
    """
    A Hugging Face token-classification folder (a teacher a user has, such as ``make demo``'s) on the page: each
    word's most probable label, at its first word piece, with its probability, and the spans of span labels.
    ``predict_json`` takes and gives what the project's tagger predictor does.
    """

    def __init__(self, folder: str) -> None:
        import tempfile

        from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher, read_id2label

        labels = read_id2label(folder)
        spans = is_span_label_set(labels)
        scheme = None if not spans else ("BIOES" if any(label[:2] in ("E-", "S-", "L-", "U-") for label in labels) else "BIO")
        self._cache = tempfile.mkdtemp(prefix="structkd-demo-")  # the page caches nothing: an empty, private folder
        self.teacher = HuggingFaceTeacher(folder, -1, self._cache, scheme)
        self.spans = spans

    def predict_json(self, inputs: Dict) -> Dict:
        words = tokenize(inputs, "spacy")
        if not words:
            return {"words": [], "tags": [], "tag_probs": [], "spans": []}
        [log_probs] = self.teacher.word_log_probs([words])
        probs, best = log_probs.exp().max(dim=-1)
        tags = [self.teacher.mapping.teacher_labels[int(i)] for i in best]
        confidences = probs.tolist()
        result: Dict = {"words": words, "tags": tags, "tag_probs": confidences, "spans": []}
        if self.spans:
            result["spans"] = [{"start": start, "end": end, "label": label,
                                "score": sum(confidences[start : end + 1]) / (end + 1 - start)}
                               for label, start, end in entities(tags)]
        return result


class ExportedStudentTagger:
    """
    An exported student folder (``student.json``, what ``allennlp_structkd.export`` writes) on the page, served as
    in a spaCy pipeline: through the ``structkd_tagger`` component of ``structkd-spacy``. ``predict_json`` takes and
    gives what the project's tagger predictor does; a parser student gives heads and dependencies.
    """

    def __init__(self, folder: str) -> None:
        import spacy

        try:
            from structkd_spacy.student import read_spec
        except ImportError:
            raise ConfigurationError(f"{folder} is an exported student folder, which structkd-spacy serves: "
                                     "pip install ./spacy_component (make install installs it)") from None
        self.spec = read_spec(folder)
        self.languages: List[str] = list(self.spec["languages"])
        self.parser = self.spec["kind"] == "seq_label_parser"
        self.nlp = spacy.blank("xx")
        self.nlp.add_pipe("structkd_tagger", config={"model": folder, "lang": self.languages[0]})

    def predict_json(self, inputs: Dict) -> Dict:
        from spacy.tokens import Doc

        words = inputs["tokens"] if "tokens" in inputs else tokenize(inputs, "spacy")
        if not words:
            return {"words": [], "tags": [], "tag_probs": [], "spans": []}
        doc = Doc(self.nlp.vocab, words=words, pos=inputs.get("upos"))
        doc = self.nlp(doc)
        if self.parser:
            return {"words": words, "predicted_heads": [0 if t.head.i == t.i else t.head.i + 1 for t in doc],
                    "predicted_dependencies": [t.dep_ for t in doc]}
        probs, labels = doc._.structkd_probs, doc._.structkd_labels
        tags = list(doc._.structkd_tags)
        confidences = [float(probs[i, labels.index(tag)]) for i, tag in enumerate(tags)]
        spans = [{"start": e.start, "end": e.end - 1, "label": e.label_, "score": float(e._.structkd_score)}
                 for e in doc.ents]
        return {"words": words, "tags": tags, "tag_probs": confidences, "spans": spans}


@dataclasses.dataclass
class LoadedModel:
    """One of the page's models: its predictor, whether it is a parser, the languages of its training data (None:
    not recorded, as for a Hugging Face folder) and a line saying what it is."""

    predictor: Any
    parser: bool
    languages: Optional[List[str]]
    what: str


def load_model(path: str) -> LoadedModel:
    """A project archive or a Hugging Face token-classification folder, ready for the page."""
    from allennlp_structkd.kd.huggingface_teacher import is_huggingface_folder

    if os.path.isfile(os.path.join(path, "student.json")):
        student = ExportedStudentTagger(path)
        return LoadedModel(student, student.parser, student.languages,
                           f"an exported {student.spec['kind']} ({len(student.spec['labels'])} labels, trained on "
                           f"{', '.join(student.languages)} text, served by the spaCy component) from {path}")
    if is_huggingface_folder(path):
        tagger = HuggingFaceTagger(path)
        labels = tagger.teacher.mapping.teacher_labels
        return LoadedModel(tagger, False, None, f"a Hugging Face token classifier ({len(labels)} labels) from {path}")
    archive = load_model_archive(path)
    model = archive.model
    if not isinstance(archive.model, KDTeacher):  # every model of this project (taggers, parsers, span NER) is one
        raise ConfigurationError(f"{path} holds a {type(model).__name__}, which this demo cannot show: give a model "
                                 "trained with this project's configs (its taggers, parsers or span NER model)")
    name = "structkd_parser" if model.default_predictor == "structkd_parser" else "structkd_tagger"
    # read from the archive's config when it was loaded
    languages = (model.training_languages if isinstance(model, FiniteWeightsModel) else None) or ["xx"]
    parameters = sum(p.numel() for p in model.parameters())
    what = (f"a {type(model).__name__} ({parameters / 1e6:.2f}M parameters, trained on {', '.join(languages)} text) "
            f"from {path}")
    return LoadedModel(Predictor.from_archive(archive, name), name == "structkd_parser", languages, what)


def check_served(languages: Optional[List[str]], lang: str, name: str) -> None:
    """The spaCy component's rule: a model serves the languages it was trained on (any, for ``xx``, several or
    none given); another is a clear error."""
    if languages is not None and lang not in languages and "xx" not in languages:
        raise ConfigurationError(f"the {name} was trained on {', '.join(languages)} text, not {lang!r}: give one of "
                                 "those languages")


def render(result: Dict, parser: bool) -> str:
    """displaCy HTML (manual mode: no spaCy pipeline needed) of one prediction."""
    words = result.get("words", [])
    if parser:
        arcs = [{"start": min(i, h - 1), "end": max(i, h - 1), "label": d, "dir": "left" if h - 1 > i else "right"}
                for i, (h, d) in enumerate(zip(result["predicted_heads"], result["predicted_dependencies"])) if h > 0]
        data = {"words": [{"text": w, "tag": p} for w, p in zip(words, result.get("upos", [""] * len(words)))], "arcs": arcs}
        return displacy.render(data, style="dep", manual=True, page=False)
    text, offsets, position = "", [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        text += word + " "
        position += len(word) + 1
    spans = result.get("spans", [])
    # the label alone, so that displaCy colours each type; the confidences are listed beside it
    ents = [{"start": offsets[s["start"]][0], "end": offsets[s["end"]][1], "label": s["label"]} for s in spans]
    if ents:
        scores = "".join(f"<li>{html.escape(' '.join(words[s['start']:s['end'] + 1]))}: {html.escape(s['label'])}, "
                         f"confidence {s['score']:.2f}</li>" for s in spans)
        return (displacy.render({"text": text.strip(), "ents": ents, "title": None}, style="ent", manual=True, page=False)
                + f"<ul class='scores'>{scores}</ul>")
    tags = " ".join(f"{html.escape(w)}/<b>{html.escape(t)}</b><small> {p:.2f}</small>"
                    for w, t, p in zip(words, result.get("tags", []), result.get("tag_probs", [])))
    return f"<p class='tags'>{tags or '(nothing found)'}</p>"


def _parser_inputs(sentence: str) -> Dict:
    """A parser reads PoS tags: ``word/UPOS`` tokens; a clear error without them (never made-up tags)."""
    pairs = [token.rsplit("/", 1) for token in sentence.split()]
    if not pairs or any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise ConfigurationError("this parser needs each word's PoS tag: type the sentence as word/UPOS pairs, "
                                 "e.g. 'The/DET dog/NOUN barks/VERB'")
    return {"tokens": [w for w, _ in pairs], "upos": [p for _, p in pairs]}


class DemoServer:
    """
    The page's server. ``lang``: the language of the sentences typed (None: the first the student was trained on;
    ``xx`` where that is not recorded); ``workers``: loaded copies of each model, so that that many requests run at once; ``max_chars``:
    the longest sentence accepted.
    """

    def __init__(self, teacher: str, student: str, lang: Optional[str] = None, workers: int = 2, max_chars: int = 2000,
                 request_timeout: float = 30.0) -> None:
        if workers < 1 or max_chars < 1 or request_timeout <= 0:
            raise ValueError(f"workers, max_chars and request_timeout must be positive, got {workers}, {max_chars} and "
                             f"{request_timeout}")
        self.request_timeout = request_timeout
        self.max_chars = max_chars
        self.pools: Dict[str, queue.Queue[Any]] = {}
        self.models: Dict[str, LoadedModel] = {}
        for name, path in (("teacher", teacher), ("student", student)):
            self.models[name] = load_model(path)
        served = self.models["student"].languages
        self.lang = check_lang(lang or (served[0] if served else "xx"))
        for name, model in self.models.items():
            check_served(model.languages, self.lang, name)
            self.pools[name] = queue.Queue()
            self._run(model, EXAMPLES.get(self.lang, EXAMPLE), self.lang)  # warm-up: the first call's set-up is not timed
            for copy_number in range(workers):  # a model and its reader serve one request at a time
                self.pools[name].put(model.predictor if copy_number == 0 else copy.deepcopy(model.predictor))

    @staticmethod
    def _run(model: LoadedModel, sentence: str, lang: str, predictor: Any = None) -> Dict:
        if model.parser:
            if "/" not in sentence:
                return {}  # the warm-up sentence has no PoS tags to read
            inputs = _parser_inputs(sentence)
            result = (predictor or model.predictor).predict_json(inputs)
            result["upos"] = inputs["upos"]
            return result
        return (predictor or model.predictor).predict_json({"sentence": sentence, "lang": lang})

    def check(self, sentence: str, lang: Optional[str]) -> str:
        """The request's language once the sentence and it are acceptable; SentenceTooLong or ConfigurationError."""
        if len(sentence) > self.max_chars:
            raise SentenceTooLong(f"the sentence has {len(sentence):,} characters; this demo takes at most {self.max_chars:,}")
        lang = check_lang(lang or self.lang)
        for name, model in self.models.items():
            check_served(model.languages, lang, name)
        return lang

    def predict(self, sentence: str, lang: str) -> Dict[str, Tuple[Dict, float, bool]]:
        """Each model's ``(prediction, median seconds over REPEATS runs, whether it is a parser)``."""
        lang = self.check(sentence, lang)
        results = {}
        for name, pool in self.pools.items():
            predictor = pool.get()
            try:
                model, seconds = self.models[name], []
                for _ in range(REPEATS):
                    started = time.perf_counter()
                    result = self._run(model, sentence, lang, predictor)
                    seconds.append(time.perf_counter() - started)
                results[name] = (result, statistics.median(seconds), model.parser)
            finally:
                pool.put(predictor)
        return results

    def about(self) -> str:
        lines = [f"<b>{name}</b>: {html.escape(model.what)}" for name, model in self.models.items()]
        return ("<br>".join(lines) + f"<br>Times: the median of {REPEATS} runs of each model on the sentence, on this "
                "machine's CPU, the models loaded and warmed up.")

    def page(self, query: Dict[str, str], error: str = "") -> str:
        """The page for a query; SentenceTooLong (413) or ConfigurationError (bad input: 400) for a bad one, unless
        ``error`` is given: then the page with the form and that message."""
        sentence = query.get("sentence", "").strip()
        lang = query.get("lang") or self.lang
        panels = ""
        if sentence and not error:
            for name, (result, seconds, parser) in self.predict(sentence, lang).items():
                panels += (f"<div class='model' id='{name}'><h2>{name}</h2><p class='time'>{1000 * seconds:.1f} ms "
                           f"(median of {REPEATS} runs)</p>{render(result, parser)}</div>")
        example = EXAMPLES.get(self.lang, EXAMPLE)
        shown = sentence if len(sentence) <= self.max_chars else ""  # a refused sentence is not sent back in full
        return PAGE.format(about=self.about(), example=html.escape(example), sentence=html.escape(shown),
                           lang=html.escape(lang), example_link="/?" + urllib.parse.urlencode({"sentence": example, "lang": self.lang}),
                           error=f"<p class='error'>{html.escape(error, quote=False)}</p>" if error else "", panels=panels)

    def api(self, body: bytes) -> Dict:
        """``POST /api/predict``: ``{"sentence": ..., "lang": ...}`` in, each model's prediction and milliseconds out."""
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigurationError(f"the request body is not JSON ({error}): send {{\"sentence\": \"...\"}}") from None
        if not isinstance(request, dict) or not isinstance(request.get("sentence"), str):
            raise ConfigurationError('the request body must be a JSON object with a "sentence" string')
        lang = request.get("lang")
        if lang is not None and not isinstance(lang, str):
            raise ConfigurationError(f"'lang' must be a language code string, got {lang!r:.80}")
        results = self.predict(request["sentence"].strip(), lang or self.lang)
        return {name: {**result, "ms": 1000 * seconds, "timing": f"median of {REPEATS} runs"}
                for name, (result, seconds, _) in results.items()}

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            # a connection that sends nothing (or half a request) for this long is closed, freeing its thread
            timeout = server.request_timeout

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                parsed = urllib.parse.urlparse(self.path)
                if parsed.path not in ("/", "/index.html"):
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                try:
                    body, status = server.page(query).encode("utf-8"), 200
                except SentenceTooLong as error:
                    body, status = server.page(query, error=str(error)).encode("utf-8"), 413
                except ConfigurationError as error:  # a bad language code, a parser without PoS
                    body, status = server.page(query, error=str(error)).encode("utf-8"), 400
                except Exception:  # noqa: BLE001 (a model's failure: the client gets a short answer, the log the rest)
                    logger.exception("the demo's models failed on %r", query.get("sentence", "")[:200])
                    message = "The models failed on this sentence (the server's log says why)."
                    body, status = server.page(query, error=message).encode("utf-8"), 500
                self._answer(status, body, "text/html; charset=utf-8")

            def do_POST(self):  # noqa: N802
                if urllib.parse.urlparse(self.path).path != "/api/predict":
                    self.send_error(404)
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                limit = 4 * server.max_chars + 1024  # UTF-8 and the JSON around the sentence
                try:
                    if length < 0 or length > limit:
                        raise SentenceTooLong(f"the request body is {length:,} bytes; this demo takes at most {limit:,}")
                    answer, status = server.api(self.rfile.read(length)), 200
                except SentenceTooLong as error:
                    answer, status = {"error": str(error)}, 413
                except ConfigurationError as error:
                    answer, status = {"error": str(error)}, 400
                except Exception:  # noqa: BLE001
                    logger.exception("the demo's models failed on an API request")
                    answer, status = {"error": "the models failed on this sentence (the server's log says why)"}, 500
                self._answer(status, json.dumps(answer).encode("utf-8"), "application/json")

            def log_message(self, *args):
                pass

        return Handler

    def serve(self, port: int = 8000) -> ThreadingHTTPServer:
        return ThreadingHTTPServer(("127.0.0.1", port), self.handler())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--lang", default=None, help="the language of the sentences typed (a spaCy code; xx: several); "
                                                      "default: the first the student was trained on")
    parser.add_argument("--workers", type=int, default=2, help="requests served at once (loaded copies of each model)")
    parser.add_argument("--max-chars", type=int, default=2000, help="the longest sentence accepted (longer: HTTP 413)")
    args = parser.parse_args()
    try:
        server = DemoServer(args.teacher, args.student, args.lang, args.workers, args.max_chars)
    except (ValueError, ConfigurationError) as error:
        parser.error(str(error))
    httpd = server.serve(args.port)
    print(f"serving on http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

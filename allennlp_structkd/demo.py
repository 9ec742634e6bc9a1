"""
A small local web page: type a sentence, see the teacher's and the student's predictions side by
side, rendered with displaCy (entities, or tags and dependencies), with the time each model took.

    python -m allennlp_structkd.demo --teacher runs/demo/teacher/model.tar.gz \\
        --student runs/demo/student_struct_kd/model.tar.gz [--port 8000] [--lang es]

Then open http://127.0.0.1:8000/ . The page is rendered on the server (no JavaScript): the form's
GET request ``/?sentence=...&lang=...`` returns the predictions. It listens on 127.0.0.1 only.
"""
import argparse
import html
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Tuple

from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor
from spacy import displacy

import allennlp_structkd  # noqa: F401

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>allennlp-structkd: teacher and student</title>
<style>body{{font-family:sans-serif;margin:2em}} .models{{display:flex;gap:2em}} .model{{flex:1;border:1px solid #ccc;
padding:1em;border-radius:6px}} h2{{margin-top:0}} .time{{color:#555}} textarea{{width:100%;font-size:1.1em}}</style>
</head><body>
<h1>Structural knowledge distillation: teacher and student</h1>
<form method="get" action="/"><textarea name="sentence" rows="2">{sentence}</textarea>
<p>language <input name="lang" value="{lang}" size="4"> <button type="submit">Predict</button></p></form>
<div class="models">{panels}</div>
</body></html>"""


def _predictor(path: str) -> Predictor:
    archive = load_archive(path)
    model = archive.model
    name = "structkd_parser" if model.default_predictor == "structkd_parser" else "structkd_tagger"
    return Predictor.from_archive(archive, name)


def render(result: Dict, parser: bool) -> str:
    """displaCy HTML (manual mode: no spaCy pipeline needed) of one prediction."""
    words = result.get("words", [])
    if parser:
        arcs = [{"start": min(i, h - 1), "end": max(i, h - 1), "label": d, "dir": "left" if h - 1 > i else "right"}
                for i, (h, d) in enumerate(zip(result["predicted_heads"], result["predicted_dependencies"])) if h > 0]
        data = {"words": [{"text": w, "tag": ""} for w in words], "arcs": arcs}
        return displacy.render(data, style="dep", manual=True, page=False)
    text, offsets, position = "", [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        text += word + " "
        position += len(word) + 1
    ents = [{"start": offsets[s["start"]][0], "end": offsets[s["end"]][1], "label": f"{s['label']} {s['score']:.2f}"}
            for s in result.get("spans", [])]
    if ents:
        return displacy.render({"text": text.strip(), "ents": ents, "title": None}, style="ent", manual=True, page=False)
    tags = " ".join(f"{html.escape(w)}/<b>{html.escape(t)}</b>" for w, t in zip(words, result.get("tags", [])))
    return f"<p class='tags'>{tags or '(no entities)'}</p>"


class DemoServer:
    def __init__(self, teacher: str, student: str, lang: str = "xx") -> None:
        self.models = {"teacher": _predictor(teacher), "student": _predictor(student)}
        self.lang = lang
        self.lock = threading.Lock()

    def predict(self, sentence: str, lang: str) -> Dict[str, Tuple[Dict, float]]:
        results = {}
        with self.lock:  # models are not thread-safe
            for name, predictor in self.models.items():
                parser = predictor._model.default_predictor == "structkd_parser"
                started = time.perf_counter()
                inputs = {"sentence": sentence, "lang": lang}
                if parser:
                    inputs = {"tokens": sentence.split(), "upos": ["X"] * len(sentence.split())}
                result = predictor.predict_json(inputs)
                results[name] = (result, time.perf_counter() - started, parser)
        return results

    def page(self, query: Dict[str, str]) -> str:
        sentence = query.get("sentence", "").strip()
        lang = query.get("lang") or self.lang
        panels = ""
        if sentence:
            for name, (result, seconds, parser) in self.predict(sentence, lang).items():
                panels += (f"<div class='model' id='{name}'><h2>{name}</h2><p class='time'>{1000 * seconds:.1f} ms</p>"
                           f"{render(result, parser)}</div>")
        return PAGE.format(sentence=html.escape(sentence), lang=html.escape(lang), panels=panels)

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parsed = urllib.parse.urlparse(self.path)
                if parsed.path not in ("/", "/index.html"):
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                body = server.page(query).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
    parser.add_argument("--lang", default="xx")
    args = parser.parse_args()
    httpd = DemoServer(args.teacher, args.student, args.lang).serve(args.port)
    print(f"serving on http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

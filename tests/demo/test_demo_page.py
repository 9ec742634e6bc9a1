"""The demo page, end to end in headless Chromium (Debian's chromium; .ci/run installs it)."""
import json
import os
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest

from allennlp_structkd.demo import DemoServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(teacher_archive, maxent_teacher_archive):
    demo = DemoServer(teacher_archive, maxent_teacher_archive, lang="es")
    httpd = demo.serve(0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_page_shows_both_models_with_times(server):
    url = server + "?" + urllib.parse.urlencode({"sentence": "Juan visitó Madrid .", "lang": "es"})
    page = urllib.request.urlopen(url, timeout=120).read().decode("utf-8")
    assert "id='teacher'" in page and "id='student'" in page
    assert page.count(" ms (median of 5 runs)</p>") == 2
    assert "Juan" in page


def test_the_landing_page_says_what_is_loaded_and_offers_an_example(server, maxent_teacher_archive):
    page = urllib.request.urlopen(server, timeout=120).read().decode("utf-8")
    assert "CrfTagger" in page and "MaxEntTagger" in page and "trained on es, nl text" in page
    assert maxent_teacher_archive in page and "median of 5 runs" in page
    assert 'placeholder="Juan visitó Madrid' in page and "try an example" in page and "id='teacher'" not in page


def test_a_language_the_student_was_not_trained_on_is_a_400_with_the_form(server):
    status, body = _get(server + "?" + urllib.parse.urlencode({"sentence": "John visited Madrid .", "lang": "en"}))
    assert status == 400 and "trained on es, nl text, not 'en'" in body
    assert "<form" in body and "John visited Madrid ." in body and "id='teacher'" not in body


def _post(url, body: bytes):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        response = urllib.request.urlopen(request, timeout=120)
        return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_json_api_answers_both_models_and_names_bad_requests(server):
    status, answer = _post(server + "api/predict", json.dumps({"sentence": "Juan visitó Madrid .", "lang": "es"}).encode())
    assert status == 200 and set(answer) == {"teacher", "student"}
    for result in answer.values():
        assert result["words"] == ["Juan", "visitó", "Madrid", "."] and len(result["tags"]) == 4
        assert result["ms"] > 0 and result["timing"] == "median of 5 runs"
    assert _post(server + "api/predict", b"{not json")[0] == 400
    status, answer = _post(server + "api/predict", json.dumps({"sentence": "John", "lang": "en"}).encode())
    assert status == 400 and "not 'en'" in answer["error"]
    status, answer = _post(server + "api/predict", json.dumps({"text": "Juan"}).encode())
    assert status == 400 and '"sentence" string' in answer["error"]
    status, answer = _post(server + "api/predict", json.dumps({"sentence": "Juan " * 3000}).encode())
    assert status == 413 and "at most" in answer["error"]


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="no chromium here (CI installs it)")
def test_in_headless_chromium(server, tmp_path):
    assert CHROMIUM is not None, "chromium is not installed: .ci/run installs Debian's chromium"
    url = server + "?" + urllib.parse.urlencode({"sentence": "Luiz Inacio Lula visitó Madrid .", "lang": "es"})
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "id=\"teacher\"" in dom.stdout and "id=\"student\"" in dom.stdout and "Lula" in dom.stdout
    shot = tmp_path / "page.png"
    result = subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1200,800", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    from PIL import Image, ImageStat

    image = Image.open(shot).convert("L")
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 5, "the screenshot is blank"  # text and boxes on a white page
    assert len(set(image.getdata())) > 10


def _get(url):
    try:
        response = urllib.request.urlopen(url, timeout=120)
        return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


@pytest.mark.parametrize("lang", ["punctuation", "__init__", "en.stop_words", "zz", "../es"])
def test_a_bad_language_code_is_a_400_naming_it(server, lang):
    status, body = _get(server + "?" + urllib.parse.urlencode({"sentence": "Juan visitó Madrid .", "lang": lang}))
    assert status == 400 and "is not a language code spaCy knows" in body


def test_a_sentence_over_the_cap_is_a_413_and_others_are_not_held_up(teacher_archive, maxent_teacher_archive):
    import time

    demo = DemoServer(teacher_archive, maxent_teacher_archive, lang="es", workers=2, max_chars=100)
    httpd = demo.serve(0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/?"
    try:
        status, body = _get(url + urllib.parse.urlencode({"sentence": "Juan " * 8000}))
        assert status == 413 and "at most 100" in body and "<form" in body
        # a slow request holds one copy of each model; a second request is served by the other copy meanwhile
        slow = demo.pools["teacher"].get()
        started = time.perf_counter()
        status, body = _get(url + urllib.parse.urlencode({"sentence": "Juan visitó Madrid ."}))
        assert status == 200 and "id='teacher'" in body and time.perf_counter() - started < 60
        demo.pools["teacher"].put(slow)
    finally:
        httpd.shutdown()


def test_entities_keep_their_type_colours_and_list_their_confidences():
    from allennlp_structkd.demo import render

    result = {"words": ["Juan", "visitó", "Madrid"], "spans": [{"start": 0, "end": 0, "label": "PER", "score": 0.91},
                                                               {"start": 2, "end": 2, "label": "LOC", "score": 0.55}]}
    page = render(result, parser=False)
    assert "PER" in page and "0.91" in page and "#" in page  # displaCy's colour for a known type
    assert "PER 0.91" not in page  # the score is not part of the label, which would make every entity grey


def test_a_hugging_face_teacher_folder_is_shown_beside_a_student(tmp_path, maxent_teacher_archive):
    """make demo's teacher is a fine-tuned Hugging Face folder: the page shows its labels and spans too."""
    from tests.kd.test_huggingface_teacher import build_classifier

    folder = build_classifier(tmp_path / "hf-teacher")
    demo = DemoServer(folder, maxent_teacher_archive, lang="es")
    results = demo.predict("Juan visitó Madrid .", "es")
    teacher, _, parser = results["teacher"]
    assert not parser and teacher["words"] == ["Juan", "visitó", "Madrid", "."]
    assert len(teacher["tags"]) == 4 and all(0 < p <= 1 for p in teacher["tag_probs"])
    assert all(span["label"] in {"PER", "LOC", "ORG", "MISC"} for span in teacher["spans"])
    assert "id='teacher'" in demo.page({"sentence": "Juan visitó Madrid ."})


def test_an_exported_student_folder_is_served_as_its_archive_predicts(tmp_path, teacher_archive, maxent_teacher_archive):
    from allennlp_structkd.export import export

    folder = export(maxent_teacher_archive, str(tmp_path / "exported"))
    from_folder = DemoServer(teacher_archive, folder, lang="es")
    from_archive = DemoServer(teacher_archive, maxent_teacher_archive, lang="es")
    sentence = "Juan visitó Madrid con la ONU ."
    served, _, _ = from_folder.predict(sentence, "es")["student"]
    expected, _, _ = from_archive.predict(sentence, "es")["student"]
    assert served["words"] == expected["words"] and served["tags"] == expected["tags"]
    assert served["tag_probs"] == pytest.approx(expected["tag_probs"], abs=1e-5)
    assert [(s["start"], s["end"], s["label"]) for s in served["spans"]] == \
        [(s["start"], s["end"], s["label"]) for s in expected["spans"]]
    page = from_folder.page({})
    assert "an exported maxent_tagger" in page and "trained on es, nl text" in page
    with pytest.raises(Exception, match="trained on es, nl text, not 'en'"):
        from_folder.predict("John", "en")

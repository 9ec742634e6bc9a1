"""The demo page, end to end in headless Chromium (Debian's chromium; .ci/run installs it)."""
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
    assert page.count(" ms</p>") == 2
    assert "Juan" in page


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

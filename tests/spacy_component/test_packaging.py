"""`spacy package` builds an installable wheel of a distilled tagger that loads with spacy.load."""
import os
import subprocess
import sys

import spacy


def test_spacy_package_wheel_installs_and_loads(teacher_archive, tmp_path):
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": teacher_archive})
    nlp.meta["name"] = "structkd_test"
    nlp.meta["version"] = "0.0.1"
    nlp.to_disk(tmp_path / "pipeline")
    expected = [t._.structkd_label for t in nlp("Juan visitó Madrid .")]
    (tmp_path / "dist").mkdir()
    build = subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "pipeline"), str(tmp_path / "dist"),
                            "--build", "wheel", "--force"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("*/dist/*.whl"))
    # install into a scratch location (no deps: spaCy, allennlp and this project are already importable)
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    code = "import spacy; nlp = spacy.load('es_structkd_test'); print([t._.structkd_label for t in nlp('Juan visitó Madrid .')])"
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().splitlines()[-1] == str(expected)

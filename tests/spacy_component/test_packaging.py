"""
A saved pipeline, and a wheel built from it with `spacy package` and installed into a fresh
virtualenv on another path, work with the original model archive gone.
"""
import os
import shutil
import subprocess
import sys
import sysconfig

import spacy

TEXT = "Juan visitó Madrid ."


def _pipeline_without_its_archive(teacher_archive, tmp_path):
    """A pipeline saved from a copy of the archive, the copy then deleted."""
    original = tmp_path / "original" / "model.tar.gz"
    original.parent.mkdir()
    shutil.copyfile(teacher_archive, original)
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": str(original)})
    nlp.meta["name"] = "structkd_test"
    nlp.meta["version"] = "0.0.1"
    expected = [t._.structkd_label for t in nlp(TEXT)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(original.parent)
    return expected


def test_saved_pipeline_loads_once_without_the_original_archive(teacher_archive, tmp_path, monkeypatch):
    from allennlp.models import archival

    expected = _pipeline_without_its_archive(teacher_archive, tmp_path)
    loads = []
    real = archival.load_archive
    monkeypatch.setattr(archival, "load_archive", lambda path, **kw: loads.append(path) or real(path, **kw))
    nlp = spacy.load(tmp_path / "pipeline")
    assert [t._.structkd_label for t in nlp(TEXT)] == expected
    assert loads == [str(tmp_path / "pipeline" / "structkd_tagger" / "model.tar.gz")]  # once, from the pipeline
    nlp.to_disk(tmp_path / "again")  # a loaded pipeline saves again, self-contained
    assert [t._.structkd_label for t in spacy.load(tmp_path / "again")(TEXT)] == expected


def test_spacy_package_wheel_installs_in_a_fresh_virtualenv_and_loads(teacher_archive, tmp_path):
    expected = _pipeline_without_its_archive(teacher_archive, tmp_path)
    (tmp_path / "dist").mkdir()
    build = subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "pipeline"), str(tmp_path / "dist"),
                            "--build", "wheel", "--force"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("*/dist/*.whl"))
    shutil.rmtree(tmp_path / "pipeline")  # only the wheel is left
    # a fresh virtualenv elsewhere; spaCy, allennlp and this project (which the wheel needs) reach it
    # through a .pth file, since there is no package index to install them from
    venv = tmp_path / "elsewhere" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "project_deps.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    code = f"import spacy; nlp = spacy.load('es_structkd_test'); print([t._.structkd_label for t in nlp({TEXT!r})])"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    loaded = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path / "elsewhere"), timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().splitlines()[-1] == str(expected)

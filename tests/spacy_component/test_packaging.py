"""
A saved pipeline, and a wheel built from it with `spacy package`, installed with the structkd-spacy
wheel into a fresh virtualenv on another path where AllenNLP cannot be imported, serve the exported
student with the original folder gone.
"""
import os
import shutil
import subprocess
import sys
import sysconfig

import spacy

from tests.conftest import FIXTURES

TEXT = "Juan visitó Madrid ."
REPO = os.path.dirname(str(FIXTURES.parent))


def _pipeline_without_its_student(teacher_archive, tmp_path):
    """A pipeline saved from an exported student, the export then deleted."""
    from allennlp_structkd.export import export

    student = export(teacher_archive, str(tmp_path / "original" / "student"))
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": student})
    nlp.meta["name"] = "structkd_test"
    nlp.meta["version"] = "0.0.1"
    expected = [t._.structkd_label for t in nlp(TEXT)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(tmp_path / "original")
    return expected


def test_saved_pipeline_loads_without_the_original_student(teacher_archive, tmp_path):
    expected = _pipeline_without_its_student(teacher_archive, tmp_path)
    assert sorted(os.listdir(tmp_path / "pipeline" / "structkd_tagger")) == ["student.json", "vocabulary.json", "weights.pt"]
    nlp = spacy.load(tmp_path / "pipeline")
    assert [t._.structkd_label for t in nlp(TEXT)] == expected
    nlp.to_disk(tmp_path / "again")  # a loaded pipeline saves again, self-contained
    assert [t._.structkd_label for t in spacy.load(tmp_path / "again")(TEXT)] == expected


def test_spacy_package_wheel_serves_in_a_fresh_virtualenv_without_allennlp(teacher_archive, tmp_path):
    expected = _pipeline_without_its_student(teacher_archive, tmp_path)
    dist = tmp_path / "dist"
    dist.mkdir()
    # built from a copy: setuptools writes build/ beside the sources it builds, and must not write into the checkout
    source = shutil.copytree(os.path.join(REPO, "spacy_component"), tmp_path / "structkd_spacy_source",
                             ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    component = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist),
                                str(source)], capture_output=True, text=True, timeout=300)
    assert component.returncode == 0, component.stderr[-2000:]
    build = subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "pipeline"), str(dist),
                            "--build", "wheel", "--force"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheels = [next(dist.glob("structkd_spacy-*.whl")), next(dist.glob("*/dist/*.whl"))]
    shutil.rmtree(tmp_path / "pipeline")  # only the wheels are left
    # a fresh virtualenv elsewhere: spaCy, PyTorch and numpy reach it through a .pth file (there is no package
    # index here); AllenNLP and allennlp-structkd cannot be imported, and the project's editable structkd-spacy
    # is hidden, so that the wheel's is the one used
    venv = tmp_path / "elsewhere" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "a_project_deps.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    (site / "no_allennlp.py").write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('allennlp', 'allennlp_structkd'):\n"
        "            raise ImportError(name + ' is not installed here')\n"
        "sys.meta_path[:] = [Block()] + [f for f in sys.meta_path if 'editable' not in type(f).__module__]\n")
    (site / "z_no_allennlp.pth").write_text("import no_allennlp\n")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), *map(str, wheels)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    code = ("import spacy, structkd_spacy\n"
            "try:\n    import allennlp\n    raise SystemExit('allennlp imported')\nexcept ImportError:\n    pass\n"
            f"nlp = spacy.load('es_structkd_test')\nprint(structkd_spacy.__file__)\nprint([t._.structkd_label for t in nlp({TEXT!r})])")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    loaded = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path / "elsewhere"), timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    where, labels = loaded.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(site)) and labels == str(expected)

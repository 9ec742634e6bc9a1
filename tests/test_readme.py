"""
The README's commands work as written: every command block of its "Quick start" and "Use with
AllenNLP" sections runs, in order, in a scratch folder, with ``../shared/data`` replaced by fixture
data of the same layout (the project's toy CoNLL-2002-like files) and ``make demo`` run on that data
(``make test`` is what runs this test, so it is left out); the README stays a user's page (under
20 KB, every link to a file of the repository resolves); and the settings table of
``docs/configuration.md`` names every variable the configs and the code read.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import SAMPLE_DATA

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(REPO, "README.md"), encoding="utf-8") as _handle:
    README = _handle.read()
with open(os.path.join(REPO, "docs", "configuration.md"), encoding="utf-8") as _handle:
    CONFIGURATION = _handle.read()


def section(title: str, page: str = README) -> str:
    start = page.index(f"\n## {title}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end > 0 else None]


def bash_blocks(title: str):
    return re.findall(r"```bash\n(.*?)```", section(title), flags=re.S)


@pytest.fixture
def scratch(tmp_path):
    """A working folder that looks like the checkout to the commands (its venv, Makefile, configs), and fixture data
    laid out like ../shared/data."""
    data = tmp_path / "data" / "conll2002"
    data.mkdir(parents=True)
    for lang, prefix in (("es", "esp"), ("nl", "ned")):
        shutil.copyfile(SAMPLE_DATA / f"toy_ner_{lang}.train", data / f"{prefix}.train")
        shutil.copyfile(SAMPLE_DATA / f"toy_ner_{lang}.dev", data / f"{prefix}.testa")
    work = tmp_path / "work"
    work.mkdir()
    venv = os.path.dirname(os.path.dirname(sys.executable))
    os.symlink(venv, work / ".venv")
    for name in ("Makefile", "training_configs", "requirements.txt", "requirements-dev.txt", "constraints.txt", "setup.py",
                 "spacy_component", ".allennlp_plugins", "allennlp_structkd", "experiments"):
        os.symlink(os.path.join(REPO, name), work / name)
    return work, tmp_path / "data"


def run_block(block: str, work, data):
    script = block.replace("../shared/data", str(data))
    # the install is the checkout's (make test did it): make must not install from the scratch folder
    script = re.sub(r"^make demo\b.*$", f"make -o .venv/.structkd-installed demo DATA={data}/conll2002 LABELED=100 "
                    "DEMO_ARGS='--epochs 2 --teacher-epochs 2'", script, flags=re.M)
    script = re.sub(r"^make test\b.*$", "", script, flags=re.M)  # this very test runs under it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGGING_", "TEACHER_", "STRUCTKD_"))}
    env.update(STRUCTKD_EPOCHS="2", STRUCTKD_TEACHER_EPOCHS="2")  # the commands as written, trained briefly
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(work), env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, f"README block failed:\n{script}\n--- stdout:\n{result.stdout[-3000:]}\n--- stderr:\n{result.stderr[-3000:]}"
    return result


@pytest.mark.timeout(1500)
def test_the_quick_start_and_allennlp_commands_work_as_written(scratch):
    work, data = scratch
    outputs = [run_block(block, work, data) for title in ("Quick start", "Use with AllenNLP") for block in bash_blocks(title)]
    assert outputs and any("% of teacher" in o.stdout for o in outputs)  # make demo printed its table
    assert os.path.isfile(work / "runs" / "student" / "model.tar.gz")
    assert os.path.isfile(work / "runs" / "student_exported" / "student.json")
    assert os.path.isfile(work / "runs" / "student_hf" / "model.tar.gz")  # distilled from Hugging Face folders
    text = "".join(o.stdout for o in outputs)
    assert '"f1-measure-overall"' in text  # `allennlp evaluate` printed its metrics
    assert "NER F" in text and os.path.isfile(work / "runs" / "esp.spacy")  # and spaCy's own `spacy evaluate`


def test_the_readme_is_a_users_page_whose_links_resolve():
    assert len(README.encode("utf-8")) < 20_000
    targets = re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", README)
    assert "docs/configuration.md" in targets
    missing = [t for t in targets if not os.path.exists(os.path.join(REPO, t.split("#")[0]))]
    assert not missing, f"the README links to files that do not exist: {missing}"
    for page in ("docs/configuration.md", "docs/serving.md", "docs/objectives.md", "docs/components.md"):
        with open(os.path.join(REPO, page), encoding="utf-8") as handle:
            text = handle.read()
        broken = [t for t in re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", text)
                  if not os.path.exists(os.path.join(REPO, "docs", t.split("#")[0]))]
        assert not broken, f"{page} links to files that do not exist: {broken}"


def test_the_settings_table_names_every_variable_read():
    from allennlp_structkd.config_defaults import DEFAULTS

    read = set(DEFAULTS)
    # the library and the tooling beside it
    walks = [os.walk(os.path.join(REPO, package)) for package in ("allennlp_structkd", "experiments")]
    for root, _, files in (entry for walk in walks for entry in walk):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name), encoding="utf-8") as handle:
                    read |= set(re.findall(r"environ(?:\.get)?[\(\[]\s*[\"']((?:STRUCTKD|TAGGING|STUDENT|FROZEN)_[A-Z_]+)", handle.read()))
    named = set()
    for line in section("Settings", CONFIGURATION).splitlines():
        if line.startswith("| `"):
            named |= set(re.findall(r"`([A-Z0-9_]+)`", line.split("|")[1]))
    missing = sorted(read - named)
    assert not missing, f"the settings table of docs/configuration.md lacks {missing}"

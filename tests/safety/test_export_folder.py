"""Export writes a new folder or replaces an earlier export; it never removes anything it did not write."""
import os
import stat
import subprocess
import sys

import pytest
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.export import export


def _tree(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)


def test_export_into_the_current_folder_is_refused_and_deletes_nothing(teacher_archive, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "model.tar.gz"
    archive.write_bytes(open(teacher_archive, "rb").read())
    (work / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "allennlp_structkd.export", "model.tar.gz", "."], cwd=work,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "is the current folder" in result.stderr
    assert _tree(work) == ["model.tar.gz", "notes.txt"]


def test_export_into_the_training_run_is_refused(teacher_archive, tmp_path):
    run = os.path.dirname(teacher_archive)
    before = _tree(run)
    with pytest.raises(ConfigurationError, match="holds the archive"):
        export(teacher_archive, run)
    assert _tree(run) == before


def test_an_existing_folder_that_is_no_export_is_refused(teacher_archive, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"jpeg")
    with pytest.raises(ConfigurationError, match=r"photos exists and is not an earlier export \(it holds a.jpg\)"):
        export(teacher_archive, str(folder))
    assert _tree(folder) == ["a.jpg"]
    # an earlier export with a file of someone else's added: not export's to replace either
    export(teacher_archive, str(tmp_path / "student"))
    (tmp_path / "student" / "README.md").write_text("my notes")
    with pytest.raises(ConfigurationError, match="not an earlier export"):
        export(teacher_archive, str(tmp_path / "student"))
    assert (tmp_path / "student" / "README.md").read_text() == "my notes"


def test_an_earlier_export_is_replaced_whole_and_nothing_is_left_beside_it(teacher_archive, tmp_path):
    target = tmp_path / "student"
    export(teacher_archive, str(target))
    (target / "weights.pt").write_bytes(b"stale")
    export(teacher_archive, str(target))
    assert (target / "weights.pt").read_bytes() != b"stale"
    assert sorted(os.listdir(tmp_path)) == ["student"]


def test_the_exported_folder_gets_an_ordinary_folders_mode(teacher_archive, tmp_path):
    reference = tmp_path / "ordinary"
    reference.mkdir()
    target = tmp_path / "student"
    export(teacher_archive, str(target))
    assert stat.S_IMODE(os.stat(target).st_mode) == stat.S_IMODE(os.stat(reference).st_mode)

"""Archives from elsewhere: no member is written outside the folder they are extracted to, an empty or
foreign file is a clear error, and a model with non-finite weights is refused with the parameter's name."""
import os
import uuid

import pytest
import spacy
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.archives import UnsafeArchiveError, load_model_archive
from tests.safety.archive_tools import rebuild


@pytest.fixture
def marker_names(tmp_path):
    """Where a crafted member would land: beside the temporary extraction folder (``..``), and an absolute path."""
    import tempfile

    name = f"structkd-marker-{uuid.uuid4().hex}"
    outside = os.path.join(tempfile.gettempdir(), name)  # structkd-archive-XXXX/../name
    absolute = str(tmp_path / f"{name}-absolute")
    yield name, outside, absolute
    for path in (outside, absolute):
        if os.path.exists(path):
            os.remove(path)


@pytest.fixture
def crafted(teacher_archive, tmp_path, marker_names):
    name, outside, absolute = marker_names
    archive = rebuild(teacher_archive, str(tmp_path / "crafted.tar.gz"),
                      extra=[(f"../{name}", b"written outside"), (absolute, b"written outside")])
    return archive, outside, absolute


def _nothing_written(outside, absolute):
    return not os.path.exists(outside) and not os.path.exists(absolute)


def test_loading_a_crafted_archive_writes_nothing_outside_and_says_why(crafted):
    archive, outside, absolute = crafted
    with pytest.raises(UnsafeArchiveError, match="crafted.tar.gz holds a member that is refused"):
        load_model_archive(archive)
    assert _nothing_written(outside, absolute)


def test_every_place_that_opens_an_archive_refuses_a_crafted_one(crafted, tmp_path):
    from allennlp_structkd.demo import DemoServer
    from allennlp_structkd.export import export
    from allennlp_structkd.kd.teacher import Teacher

    archive, outside, absolute = crafted
    with pytest.raises(ConfigurationError, match="refused"):
        export(archive, str(tmp_path / "student"))
    assert not (tmp_path / "student").exists()
    with pytest.raises(ValueError, match="refused"):
        spacy.blank("es").add_pipe("structkd_tagger", config={"model": archive})
    with pytest.raises(ConfigurationError, match="refused"):
        Teacher(archive, -1, str(tmp_path / "cache"))
    with pytest.raises(ConfigurationError, match="refused"):
        DemoServer(archive, archive)
    assert _nothing_written(outside, absolute)


def test_the_allennlp_command_extracts_through_the_same_checks(crafted, monkeypatch):
    """`allennlp predict` / `evaluate` with this plugin: AllenNLP's own load_archive, with the checked extraction
    the plugin puts in place in that command (and nowhere else)."""
    from allennlp.models import archival

    from allennlp_structkd.archives import check_archives_in_this_command

    archive, outside, absolute = crafted
    monkeypatch.setattr(archival, "extracted_archive", archival.extracted_archive)  # restored after the test
    check_archives_in_this_command()
    with pytest.raises(UnsafeArchiveError):
        archival.load_archive(archive)
    assert _nothing_written(outside, absolute)


def test_a_plain_library_import_leaves_allennlp_extraction_alone():
    import subprocess
    import sys

    code = ("from allennlp.models import archival; before = archival.extracted_archive; import allennlp_structkd; "
            "print(archival.extracted_archive is before)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr[-2000:]


@pytest.mark.parametrize("content, message", [(b"", "is an empty file, not a model archive"),
                                              (b"plain text", "is not a model archive")])
def test_an_empty_or_foreign_file_is_a_clear_error_everywhere(tmp_path, content, message):
    from allennlp_structkd.export import export

    path = tmp_path / "model.tar.gz"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=f"model.tar.gz {message}"):
        export(str(path), str(tmp_path / "student"))
    with pytest.raises(ValueError, match=f"model.tar.gz {message}"):
        spacy.blank("es").add_pipe("structkd_tagger", config={"model": str(path)})


def _poison(state):
    state["tag_projection.weight"][0, 0] = float("nan")
    state["tag_projection.bias"][1] = float("inf")


def test_non_finite_weights_are_refused_at_load_naming_the_parameters(teacher_archive, tmp_path):
    from allennlp.models.archival import load_archive

    from allennlp_structkd.export import export

    poisoned = rebuild(teacher_archive, str(tmp_path / "nan.tar.gz"), weights=_poison)
    for load in (load_model_archive, load_archive):  # ours, and AllenNLP's own (allennlp predict, evaluate)
        with pytest.raises(ConfigurationError, match=r"non-finite weights.*tag_projection.weight: 1 NaN; "
                                                     r"tag_projection.bias: 1 infinite"):
            load(poisoned)
    with pytest.raises(ConfigurationError, match="tag_projection.weight: 1 NaN"):
        export(poisoned, str(tmp_path / "student"))
    assert not (tmp_path / "student").exists()
    with pytest.raises(ValueError, match="tag_projection.weight: 1 NaN"):
        spacy.blank("es").add_pipe("structkd_tagger", config={"model": poisoned})


def test_a_link_member_is_refused_before_anything_is_extracted(teacher_archive, tmp_path):
    """A link could redirect a later member (a link to '..', then a file through it): a model archive has none."""
    import io
    import tarfile

    crafted = tmp_path / "linked.tar.gz"
    with tarfile.open(teacher_archive) as source, tarfile.open(crafted, "w:gz") as out:
        link = tarfile.TarInfo("up")
        link.type, link.linkname = tarfile.SYMTYPE, ".."
        out.addfile(link)
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member) if member.isfile() else None)
        marker = tarfile.TarInfo("up/structkd-through-link")
        marker.size = 1
        out.addfile(marker, io.BytesIO(b"x"))
    with pytest.raises(UnsafeArchiveError, match=r"'up': a link, device or pipe"):
        load_model_archive(str(crafted))

"""Transfer text as users have it: gzip files, many files by a glob, bad lines skipped one at a time and counted
(or an error naming file and line), and labeled and transfer sentences interleaved for loaders that hold part of
the data."""
import gzip
import json
import logging

import pytest
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.dataset_readers.common import InputError
from allennlp_structkd.dataset_readers.teacher_annotating import interleaved
from allennlp_structkd.dataset_readers.unlabeled_text import UnlabeledTextReader


def _words(instances):
    return [" ".join(i["metadata"]["words"]) for i in instances]


def test_gzip_files_named_by_a_glob_are_read_in_sorted_order(tmp_path):
    for name, text in (("b.txt.gz", "c d\n"), ("a.txt.gz", "a b\n\n")):
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as handle:
            handle.write(text)
    instances = list(UnlabeledTextReader().read(json.dumps({"es": str(tmp_path / "*.txt.gz")})))
    assert _words(instances) == ["a b", "c d"]
    assert instances[1]["metadata"]["file"].endswith("b.txt.gz") and instances[1]["metadata"]["lang"] == "es"


def test_a_glob_that_matches_nothing_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigurationError, match=r"no data file matches .*nothing-\*\.txt"):
        list(UnlabeledTextReader().read(str(tmp_path / "nothing-*.txt")))


def test_bad_lines_are_errors_naming_file_and_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"one two\n\xff\xfe bad\nthree\n")
    with pytest.raises(InputError, match=r"t.txt, line 2: bytes .* are not valid utf-8"):
        list(UnlabeledTextReader().read(str(path)))
    path.write_text("ok\n" + " ".join(["w"] * 10_000) + "\n")
    with pytest.raises(InputError, match=r"t.txt, line 2: 10000 tokens, more than max_tokens=512"):
        list(UnlabeledTextReader().read(str(path)))


def test_without_strict_each_bad_line_alone_is_skipped_and_counted(tmp_path, caplog):
    path = tmp_path / "t.txt"
    path.write_bytes(b"one two\n\xff bad\n\n" + b" ".join([b"w"] * 10_000) + b"\nthree\n")
    with caplog.at_level(logging.INFO):
        instances = list(UnlabeledTextReader(strict=False).read(str(path)))
    assert _words(instances) == ["one two", "three"]  # the rest of the file is read
    assert "skipped 2 bad sentence(s)" in caplog.text and "line 2" in caplog.text and "line 4" in caplog.text
    assert "1 blank line(s) skipped" in caplog.text


def test_interleaving_keeps_each_streams_order_and_its_share():
    labeled, unlabeled = [f"l{i}" for i in range(10)], [f"u{i}" for i in range(30)]
    mixed = list(interleaved([iter(labeled), iter(unlabeled)], [1.0, 3.0]))
    assert sorted(mixed) == sorted(labeled + unlabeled)
    assert [x for x in mixed if x[0] == "l"] == labeled and [x for x in mixed if x[0] == "u"] == unlabeled
    first = mixed[:8]
    assert sum(x[0] == "l" for x in first) == 2  # a quarter of every stretch is labeled


@pytest.mark.parametrize("strict", [True, False])
def test_the_default_transfer_reader_is_as_strict_as_the_labeled_data(tmp_path, strict):
    from allennlp_structkd.dataset_readers.conll_ner import ConllNerReader
    from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader
    from allennlp_structkd.kd.losses import StructuralKD

    # building the reader loads no teacher: the archive need not exist for the check
    reader = TeacherAnnotatingReader(base_reader=ConllNerReader(strict=strict), teachers={"es": str(tmp_path / "t.tar.gz")},
                                     objective=StructuralKD())
    path = tmp_path / "t.txt"
    path.write_text("one two\n" + " ".join(["w"] * 600) + "\nthree\n")
    if strict:
        with pytest.raises(InputError, match=r"t.txt, line 2: 600 tokens, more than max_tokens=512"):
            list(reader.unlabeled_reader.read(str(path)))
    else:  # STRUCTKD_STRICT=false: the long line alone is skipped (and counted), not the run stopped
        assert _words(reader.unlabeled_reader.read(str(path))) == ["one two", "three"]

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


def test_mixed_sources_mix_every_language_and_kind_throughout_the_stream(tmp_path, monkeypatch):
    """With mix_sources a loader that holds part of the data at a time sees, in every stretch, labeled and transfer
    sentences of every language in proportion (a {lang: path} map is otherwise read a language after the other)."""
    import json
    from collections import Counter

    from allennlp_structkd.dataset_readers.conll_ner import ConllNerReader
    from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader
    from allennlp_structkd.kd.losses import StructuralKD

    files = {}
    for lang in ("es", "nl"):
        labeled = tmp_path / f"{lang}.conll"
        labeled.write_text("".join(f"{lang}{i} B-PER\nx O\n\n" for i in range(100)))
        transfer = tmp_path / f"{lang}.txt"
        transfer.write_text("".join(f"{lang}{i} x\n" for i in range(300 if lang == "es" else 150)))
        files[lang] = (str(labeled), str(transfer))
    assert ConllNerReader().count_sentences(files["es"][0]) == 100  # what each file is weighed by
    assert UnlabeledTextReader().count_sentences(files["es"][1]) == 300
    reader = TeacherAnnotatingReader(base_reader=ConllNerReader(), teachers={"es": "unused", "nl": "unused"},
                                     objective=StructuralKD(), mix_sources=True)
    monkeypatch.setattr(reader, "_load_teachers_of", lambda path: None)  # the stream is read before any teacher sees it
    path = json.dumps({"labeled": {lang: f[0] for lang, f in files.items()}, "unlabeled": {lang: f[1] for lang, f in files.items()}})
    kinds = [(instance["metadata"].metadata["lang"], "tags" in instance.fields) for instance in reader.stream(path)]
    assert Counter(kinds) == {("es", True): 100, ("nl", True): 100, ("es", False): 300, ("nl", False): 150}
    for start in range(0, len(kinds) - 100, 100):  # every stretch of 100 holds all four, each near its share
        window = Counter(kinds[start : start + 100])
        assert set(window) == {("es", True), ("nl", True), ("es", False), ("nl", False)}, (start, window)
    without = TeacherAnnotatingReader(base_reader=ConllNerReader(), teachers={"es": "unused", "nl": "unused"},
                                      objective=StructuralKD())
    monkeypatch.setattr(without, "_load_teachers_of", lambda path: None)
    assert sorted(i["metadata"].metadata["sentence_id"] for i in without.stream(path)) == \
        sorted(i["metadata"].metadata["sentence_id"] for i in reader.stream(path))  # the same sentences, in another order


def test_a_shuffle_buffer_keeps_every_item_holds_a_bounded_window_and_follows_its_seed():
    import random

    from allennlp_structkd.dataset_readers.teacher_annotating import shuffled

    items = list(range(1000))
    out = list(shuffled(iter(items), 50, random.Random(3)))
    assert sorted(out) == items and out != items
    assert all(item - position <= 50 for position, item in enumerate(out))  # nothing comes out more than 50 places early
    assert list(shuffled(iter(items), 50, random.Random(3))) == out and list(shuffled(iter(items), 50, random.Random(4))) != out
    assert list(shuffled(iter(range(10)), 50, random.Random(0))) != list(range(10))  # fewer items than the window

"""Bad input names its file, line and value: encodings, byte-order marks, corrupt caches, typos, bad teacher paths."""
import sqlite3

import numpy as np
import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Vocabulary
from allennlp.models import Model

import allennlp_structkd  # noqa: F401
from allennlp_structkd.dataset_readers.common import InputError
from allennlp_structkd.kd.cache import CorruptCacheError, TeacherCache

CONLL = "-DOCSTART- -X- O\n\nJuan B-PER\nvisitó O\nMálaga B-LOC\n\n"
READERS = {
    "structkd_conll_ner": ("ner.conll", CONLL),
    "structkd_conllu": ("ud.conllu", "1\tMálaga\t_\tPROPN\t_\t_\t0\troot\t_\t_\n\n"),
    "structkd_ptb_dependency": ("ptb.dp", "Málaga\tNNP\t0\n\n"),
    "structkd_unlabeled_text": ("text.txt", "Juan visitó Málaga\n"),
}


def reader(kind, **settings):
    return DatasetReader.from_params(Params({"type": kind, **settings}))


@pytest.mark.parametrize("kind", sorted(READERS))
@pytest.mark.parametrize("strict", [True, False])
def test_latin1_input_names_file_line_and_encoding(kind, strict, tmp_path):
    name, text = READERS[kind]
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    # transfer text without strict skips that one line: a file of nothing else is still an error, naming the bytes
    skipped = r"every sentence of the file is bad .* the first: " if kind == "structkd_unlabeled_text" and not strict else ""
    with pytest.raises(InputError, match=rf"{name}, line \d+: {skipped}bytes .* are not valid utf-8 .*'encoding'") as error:
        list(reader(kind, strict=strict).read(str(path)))
    first_non_ascii = min(i for i, c in enumerate(text) if ord(c) > 127)
    assert error.value.line == text[:first_non_ascii].count("\n") + 1
    words = [w for instance in reader(kind, encoding="latin-1").read(str(path)) for w in instance["metadata"]["words"]]
    assert "Málaga" in words


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_byte_order_mark_is_not_part_of_the_first_word(kind, tmp_path):
    name, text = READERS[kind]
    path = tmp_path / name
    path.write_bytes("\ufeff".encode() + text.encode("utf-8"))
    first = next(iter(reader(kind).read(str(path))))
    assert not any("\ufeff" in w for w in first["metadata"]["words"])
    if kind == "structkd_conll_ner":  # the -DOCSTART- line is still recognised, not read as a word
        assert first["metadata"]["words"] == ["Juan", "visitó", "Málaga"]


def test_unknown_encoding_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown encoding 'utf-9'"):
        reader("structkd_conll_ner", encoding="utf-9")


def test_a_corrupt_cache_database_names_the_file(tmp_path):
    cache = TeacherCache(str(tmp_path), "ab" * 32)
    with open(cache.path, "wb") as handle:
        handle.write(b"this is not a database" * 100)
    with pytest.raises(CorruptCacheError, match=f"{cache.path}.*delete that file"):
        cache.get_many(["k"])


def test_a_damaged_cache_entry_is_recomputed(tmp_path):
    cache = TeacherCache(str(tmp_path), "cd" * 32)
    cache.put_many([("good", {"x": np.ones(2)}), ("bad", {"x": np.zeros(2)})])
    with sqlite3.connect(cache.path) as connection:
        connection.execute("UPDATE targets SET value = ? WHERE key = 'bad'", (b"PK\x03\x04garbage",))
    found = cache.get_many(["good", "bad"])
    assert list(found) == ["good"] and cache.misses == 1  # a miss: the reader recomputes and replaces it


def test_an_entry_with_an_unknown_compression_method_is_recomputed(tmp_path):
    from allennlp_structkd.kd.cache import encode_entry

    cache = TeacherCache(str(tmp_path), "ce" * 32)
    blob = bytearray(encode_entry({"x": np.ones(2)}))
    central = blob.index(b"PK\x01\x02")  # the central directory entry, which zipfile reads
    blob[central + 10:central + 12] = (99).to_bytes(2, "little")  # its compression method: no such method
    cache.put_many([("good", {"x": np.ones(2)})])
    with sqlite3.connect(cache.path) as connection:
        connection.execute("INSERT INTO targets (key, value) VALUES ('odd', ?)", (bytes(blob),))
    assert list(cache.get_many(["good", "odd"])) == ["good"] and cache.misses == 1


def test_a_read_only_cache_is_read_and_not_called_corrupt(tmp_path, monkeypatch, caplog):
    from allennlp_structkd.kd import cache as cache_module

    writer = TeacherCache(str(tmp_path), "ef" * 32)
    writer.put_many([("k1", {"x": np.arange(3)})])
    writer.close()
    # as a read-only file system or file would (root ignores permission bits, so the test says it instead)
    monkeypatch.setattr(cache_module.os, "access", lambda path, mode: False)
    reader = TeacherCache(str(tmp_path), "ef" * 32)
    with caplog.at_level("WARNING"):
        found = reader.get_many(["k1", "k2"])
    assert list(found) == ["k1"] and np.array_equal(found["k1"]["x"], np.arange(3))
    reader.put_many([("k2", {"x": np.zeros(1)})])  # not saved, not an error
    assert reader.read_only and "is read-only" in caplog.text and len(reader) == 1
    nothing = TeacherCache(str(tmp_path / "empty"), "ef" * 32)  # nothing cached and nowhere to write: all computed
    assert nothing.get_many(["k1"]) == {} and len(nothing) == 0


def test_a_full_disk_says_so_and_not_that_the_cache_is_corrupt(tmp_path):
    from allennlp_structkd.kd.cache import CacheWriteError

    cache = TeacherCache(str(tmp_path), "fa" * 32)
    cache.put_many([("small", {"x": np.ones(1)})])
    pages = cache.connection.execute("PRAGMA page_count").fetchone()[0]
    cache.connection.execute(f"PRAGMA max_page_count = {pages + 1}")  # what a full disk does to SQLite
    with pytest.raises(CacheWriteError, match=r"cannot be written \(database or disk is full\); free space"):
        cache.put_many([("large", {"x": np.random.default_rng(0).random(200_000)})])
    assert list(cache.get_many(["small", "large"])) == ["small"]  # what was cached before is whole


def test_typos_in_reader_and_model_settings_name_the_component_and_key():
    with pytest.raises(ConfigurationError, match=r"'structkd_conll_ner' has no setting 'strcit' \(did you mean 'strict'\?\)"):
        reader("structkd_conll_ner", strcit=False)
    with pytest.raises(ConfigurationError, match=r"'structkd_teacher' has no setting 'bach_size' \(did you mean 'batch_size'\?\)"):
        reader("structkd_teacher", base_reader={"type": "structkd_conll_ner"}, teachers={"es": "x"}, objective={"type": "structural"}, bach_size=3)
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["O", "B-X"], "labels")
    embedder = {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 2, "num_embeddings": 3}}}
    with pytest.raises(ConfigurationError, match=r"'structkd_crf_tagger' has no setting 'dropuot' \(did you mean 'dropout'\?\)"):
        Model.from_params(vocab=vocab, params=Params({"type": "structkd_crf_tagger", "text_field_embedder": embedder, "dropuot": 0.1}))


def test_teacher_paths_that_are_no_archive(teacher_archive, tmp_path):
    spec = lambda teacher: Params({"type": "structkd_teacher", "base_reader": {"type": "structkd_conll_ner"},  # noqa: E731
                                   "teachers": {"es": teacher}, "objective": {"type": "structural"},
                                   "cache_directory": str(tmp_path / "cache")})
    # teachers load with the first sentence read, which asks for them like this (not when the reader is built:
    # a distilled student's archive rebuilds it without needing them)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ConfigurationError, match="is a directory without model.tar.gz"):
        DatasetReader.from_params(spec(str(tmp_path / "empty_dir"))).teacher("es")
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(ConfigurationError, match="notes.txt is not a model archive"):
        DatasetReader.from_params(spec(str(tmp_path / "notes.txt"))).teacher("es")
    # a serialization directory stands for its archive
    import os
    import shutil

    shutil.copyfile(teacher_archive, tmp_path / "empty_dir" / "model.tar.gz")
    loaded = DatasetReader.from_params(spec(str(tmp_path / "empty_dir")))
    assert os.path.samefile(loaded.teacher("es").archive_path, tmp_path / "empty_dir" / "model.tar.gz")


# -- one bad sentence is one skipped sentence, never the rest of the file ----------------------------------


def sentences_read(kind, path, **settings):
    return [instance["metadata"]["words"] for instance in reader(kind, **settings).read(str(path))]


def test_a_malformed_first_token_line_skips_only_its_sentence(tmp_path, caplog):
    path = tmp_path / "ner.conll"
    path.write_text("Juan\nvisitó O\n\nAna B-PER\nvive O\n\nLuis B-PER\n\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        assert sentences_read("structkd_conll_ner", path, strict=False) == [["Ana", "vive"], ["Luis"]]
    assert "skipped 1 bad sentence(s)" in caplog.text and "read 2" in caplog.text
    with pytest.raises(InputError, match=r"ner.conll, line 1: a token line needs at least a word and a tag"):
        sentences_read("structkd_conll_ner", path)


def test_a_pos_column_that_fits_no_line_is_an_error_even_when_not_strict(tmp_path):
    path = tmp_path / "ner.conll"
    path.write_text("Juan NNP B-PER\nvisitó V O\n\nAna NNP B-PER\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ner.conll, line 1: pos_column 5 is not a column of the file's 3"):
        sentences_read("structkd_conll_ner", path, strict=False, pos_column=5)
    assert sentences_read("structkd_conll_ner", path, strict=False, pos_column=1) == [["Juan", "visitó"], ["Ana"]]


def test_a_file_of_nothing_but_bad_sentences_is_an_error_when_not_strict(tmp_path):
    path = tmp_path / "ner.conll"
    path.write_text("Juan I-PER X\n\nAna B-PER Y Z\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"every sentence of the file is bad \(2 skipped, none read\)"):
        sentences_read("structkd_conll_ner", path, strict=False, num_columns=2)


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
@pytest.mark.parametrize("kind", sorted(READERS))
def test_every_line_ending_reads_every_line(kind, ending, tmp_path):
    texts = {
        "structkd_conll_ner": ("ner.conll", "Juan B-PER\nvisitó O\nMadrid B-LOC\n\nAna B-PER\n"),
        "structkd_conllu": ("ud.conllu", "1\tJuan\t_\tPROPN\t_\t_\t2\tnsubj\t_\t_\n2\tvisitó\t_\tVERB\t_\t_\t0\troot\t_\t_\n\n"
                                         "1\tAna\t_\tPROPN\t_\t_\t0\troot\t_\t_\n"),
        "structkd_ptb_dependency": ("ptb.dp", "Juan\tNNP\t2\nvisitó\tVBD\t0\n\nAna\tNNP\t0\n"),
        "structkd_unlabeled_text": ("text.txt", "Juan visitó Madrid\nAna\n"),
    }
    name, text = texts[kind]
    path = tmp_path / name
    path.write_bytes(text.replace("\n", ending).encode("utf-8"))
    words = sentences_read(kind, path)
    assert words[0][:2] == ["Juan", "visitó"] and words[-1] == ["Ana"] and len(words) == 2


def test_a_non_breaking_space_inside_a_word_is_part_of_the_word(tmp_path):
    path = tmp_path / "ner.conll"
    path.write_text("Juan\u00a0Pérez B-PER\nvisitó O\n\n", encoding="utf-8")
    assert sentences_read("structkd_conll_ner", path) == [["Juan\u00a0Pérez", "visitó"]]
    path.write_text("Juan\u00a0Pérez B-PER\nvisitó\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ner.conll, line 2: .*got .visitó."):  # the bad line, not line 1 with its word
        sentences_read("structkd_conll_ner", path)
    text = tmp_path / "text.txt"
    text.write_text("Juan\u00a0Pérez visitó\n", encoding="utf-8")
    assert sentences_read("structkd_unlabeled_text", text) == [["Juan\u00a0Pérez", "visitó"]]


def test_ptb_without_heads_does_not_read_the_head_column(tmp_path):
    path = tmp_path / "ptb.dp"
    path.write_text("Juan\tNNP\t_\nvisitó\tVBD\t?\n\n", encoding="utf-8")
    instances = list(reader("structkd_ptb_dependency", read_heads=False).read(str(path)))
    assert instances[0]["metadata"]["words"] == ["Juan", "visitó"] and "head_indices" not in instances[0].fields
    with pytest.raises(InputError, match=r"ptb.dp, line 1: head '_' is not a number"):
        list(reader("structkd_ptb_dependency").read(str(path)))


def test_a_typo_in_the_trainer_settings_is_an_error(tmp_path):
    import json

    from allennlp.commands.train import train_model_from_file

    from tests.conftest import FIXTURES

    with pytest.raises(ConfigurationError, match=r"the trainer has no setting 'num_epoch' \(did you mean 'num_epochs'\?\)"):
        train_model_from_file(str(FIXTURES / "configs" / "crf_tagger.jsonnet"), str(tmp_path / "run"),
                              overrides=json.dumps({"trainer.num_epoch": 1}))
    assert not (tmp_path / "run" / "model.tar.gz").exists()


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), 0.0, -1.0])
def test_a_temperature_that_is_not_a_finite_positive_number_is_an_error(temperature):
    from allennlp_structkd.kd.losses import KDLoss

    for name in ("structural", "posterior", "emission", "token", "top_k"):
        with pytest.raises(ConfigurationError, match="temperature must be a finite number > 0"):
            KDLoss.by_name(name)(temperature=temperature)

"""The teacher cache as files people copy and share: a finished writer leaves one whole .sqlite file, a
read-only cache is read whole (write-ahead log included), sentence keys are injective, and annotating into
a cache that cannot be written is an error, not "400 annotated"."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from allennlp_structkd.dataset_readers import sentence_id
from allennlp_structkd.kd.cache import CacheWriteError, TeacherCache
from tests.conftest import FIXTURES
from tests.dataset_readers.test_teacher_annotating import TRAIN, make_reader


def _entries(n):
    return [(f"key{i}", {"marginals": np.full((2, 3), i, dtype=np.float32)}) for i in range(n)]


def test_a_finished_writer_leaves_the_whole_cache_in_the_sqlite_file(tmp_path):
    cache = TeacherCache(str(tmp_path / "cache"), "abc")
    cache.put_many(_entries(50))
    cache.close()
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copyfile(cache.path, copy / os.path.basename(cache.path))  # "the one SQLite file", alone
    assert len(TeacherCache(str(copy), "abc").get_many([f"key{i}" for i in range(50)])) == 50


def test_a_read_only_cache_with_rows_still_in_its_log_is_read_whole(tmp_path, monkeypatch):
    """A writer killed before it folded its log: every row is still found by a read-only reader (an immutable
    open would ignore the log: 'no such table', or a silent recomputation of part of the set)."""
    folder = tmp_path / "cache"
    writer = TeacherCache(str(folder), "abc")
    writer.put_many(_entries(40))
    assert os.path.getsize(writer.path + "-wal") > 0  # the rows are in the log, the writer is still open
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(writer.path + suffix, str(copy / os.path.basename(writer.path)) + suffix)
    reader = TeacherCache(str(copy), "abc")
    monkeypatch.setattr(reader, "_writable", lambda: False)  # as a copy on a read-only disk is
    found = reader.get_many([f"key{i}" for i in range(40)])
    assert len(found) == 40 and reader.read_only and float(found["key7"]["marginals"][0, 0]) == 7.0
    reader.close()
    writer.close()


def test_annotating_into_a_read_only_cache_is_an_error(teacher_archive, tmp_path, monkeypatch):
    reader = make_reader(teacher_archive, tmp_path / "cache")
    monkeypatch.setattr(TeacherCache, "_writable", lambda self: False)
    with pytest.raises(CacheWriteError, match="is read-only .* nothing annotated can be saved there"):
        reader.annotate_shard(TRAIN, 0, 1)
    # training from such a cache still works (outputs computed, used, not saved: said once in the log)
    training = make_reader(teacher_archive, tmp_path / "cache")
    assert len(list(training.read(TRAIN))) == 4


def test_the_annotate_command_exits_non_zero_on_a_read_only_cache(teacher_archive, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "placeholder").write_text("")
    env = dict(os.environ, STRUCTKD_TEST_DATA=str(FIXTURES / "data"), STRUCTKD_TEST_TEACHER=teacher_archive,
               STRUCTKD_TEST_OBJECTIVE=json.dumps({"type": "structural"}), STRUCTKD_TEST_DECODER="structkd_crf_tagger",
               STRUCTKD_TEST_CACHE=str(cache))
    # a cache file that cannot be written: a read-only file system, or (as here) one the cache finds read-only
    code = ("import sys, runpy; from allennlp_structkd.kd import cache; "
            "cache.TeacherCache._writable = lambda self: False; "
            "sys.argv = ['annotate', sys.argv[1], '--workers', '1']; "
            "runpy.run_module('allennlp_structkd.annotate', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "configs" / "kd_student.jsonnet")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0 and "is read-only" in result.stderr, result.stdout[-2000:] + result.stderr[-2000:]
    assert "annotated by the teachers" not in result.stdout


def test_sentence_ids_are_injective():
    assert sentence_id("es", ["Juan\x1fGarcía", "visitó"]) != sentence_id("es", ["Juan", "García", "visitó"])
    assert sentence_id("es\x1ea", ["b"]) != sentence_id("es", ["a\x1eb"])
    assert sentence_id("es", ['a", "b']) != sentence_id("es", ["a", "b"])
    assert sentence_id("es", []) != sentence_id("es", [""])
    assert sentence_id("es", ["a"]) == sentence_id("es", ("a",))  # a stable function of the words


def test_a_sentence_with_a_separator_in_a_word_gets_its_own_targets(teacher_archive, tmp_path):
    """Read in one run, the sentences that the old key could not tell apart keep their own, right-shaped targets."""
    data = tmp_path / "data.conll"
    data.write_text("Juan\x1fGarcía B-LOC\nvisitó O\n\nJuan B-PER\nGarcía I-PER\nvisitó O\n\n", encoding="utf-8")
    reader = make_reader(teacher_archive, tmp_path / "cache")
    instances = list(reader.read(json.dumps({"es": str(data)})))
    lengths = [len(i["metadata"]["words"]) for i in instances]
    shapes = [next(iter(i["teacher_targets"].targets.values())).shape[0] for i in instances]
    assert lengths == [2, 3] and shapes == lengths and reader.teacher_calls == 2

"""Annotation on Ray Data (local mode): the same targets as the single-process path, bit for bit; a worker that dies
mid-batch costs a retry of that batch only; a rerun annotates
only what is missing; an address that does not answer is a clear error; two runs on one cache at once leave
whole entries, once each."""
import gzip
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from allennlp_structkd.kd.cache import read_entries
from tests.conftest import FIXTURES

pytest.importorskip("ray.data")

DATA = FIXTURES / "data"
CONFIG = str(FIXTURES / "configs" / "kd_student.jsonnet")
LABELED = {"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")}
BATCH = json.dumps({"dataset_reader.batch_size": 4})  # several chunks from a small transfer set


def _transfer_files(folder, sentences=30, files=2):
    """Transfer text in two gzip files (a glob names both): sentences of the fixtures' words, seeded."""
    words = "el gato duerme la casa de Madrid es grande . presidente Brasil visitó".split()
    rng = random.Random(7)
    folder.mkdir(exist_ok=True)
    for f in range(files):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(sentences // files)]
        with gzip.open(folder / f"part-{f}.txt.gz", "wt", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return str(folder / "part-*.txt.gz")


def _env(teacher, cache):
    # Ray runs its workers at niceness 15 by default: on a loaded machine they would wait on every other process,
    # and the test's time would depend on the load
    return dict(os.environ, RAY_worker_niceness="0", STRUCTKD_TEST_DATA=str(DATA), STRUCTKD_TEST_TEACHER=teacher,
                STRUCTKD_TEST_OBJECTIVE=json.dumps({"type": "structural"}), STRUCTKD_TEST_DECODER="structkd_crf_tagger",
                STRUCTKD_TEST_CACHE=str(cache))


def _annotate(env, data_path, *options, timeout=300):
    result = subprocess.run([sys.executable, "-m", "allennlp_structkd.annotate", CONFIG, data_path, "-o", BATCH, *options],
                            env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def _entries(cache):
    (path,) = [p for p in cache.iterdir() if p.suffix == ".sqlite"]
    return dict(read_entries(str(path)))


def _assert_same(actual, expected):
    assert sorted(actual) == sorted(expected)
    for key, entry in expected.items():
        assert sorted(actual[key]) == sorted(entry), key
        for name, value in entry.items():
            assert actual[key][name].dtype == value.dtype and np.array_equal(actual[key][name], value), (key, name)


@pytest.fixture(scope="module")
def transfer(tmp_path_factory):
    pattern = _transfer_files(tmp_path_factory.mktemp("transfer"))
    return json.dumps({"labeled": LABELED, "unlabeled": {"es": pattern}})


@pytest.fixture(scope="module")
def reference(teacher_archive, transfer, tmp_path_factory):
    """The targets of the single-process path (one worker)."""
    cache = tmp_path_factory.mktemp("single")
    out = _annotate(_env(teacher_archive, cache), transfer, "--workers", "1")
    assert "34 sentences: 34 annotated by the teachers, 0 already cached" in out  # 4 labeled + 30 transfer
    return _entries(cache)


def test_ray_fills_the_cache_with_the_single_process_targets_and_resumes(teacher_archive, transfer, reference, tmp_path):
    env = _env(teacher_archive, tmp_path / "cache")
    _annotate(env, json.dumps(LABELED), "--workers", "1")  # a run that did part of the work
    # each worker told its torch threads (the targets do not depend on them)
    out = _annotate(env, transfer, "--engine", "ray", "--workers", "2", "--threads-per-worker", "1")
    assert "34 sentences: 30 annotated by the teachers, 4 already cached" in out
    _assert_same(_entries(tmp_path / "cache"), reference)
    again = _annotate(env, transfer, "--engine", "ray", "--workers", "2")
    assert "34 sentences: 0 annotated by the teachers, 34 already cached" in again


def test_two_runs_on_one_cache_at_once_leave_each_entry_whole_and_once(teacher_archive, transfer, reference, tmp_path):
    env = _env(teacher_archive, tmp_path / "cache")
    command = [sys.executable, "-m", "allennlp_structkd.annotate", CONFIG, transfer, "-o", BATCH, "--workers", "1"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
    _assert_same(_entries(tmp_path / "cache"), reference)  # the key is the table's primary key: once each


def test_a_cluster_address_that_does_not_answer_is_a_clear_error(tmp_path):
    env = dict(os.environ, STRUCTKD_TEST_DATA=str(DATA), STRUCTKD_TEST_TEACHER="unused",
               STRUCTKD_TEST_OBJECTIVE=json.dumps({"type": "structural"}), STRUCTKD_TEST_DECODER="structkd_crf_tagger",
               STRUCTKD_TEST_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "allennlp_structkd.annotate", CONFIG, "--engine", "ray",
                             "--address", "127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no Ray cluster answers at 127.0.0.1:9" in result.stderr and "ray start --head" in result.stderr
    assert not (tmp_path / "cache").exists()  # said before any teacher was loaded or trained


def test_an_address_that_is_not_host_and_port_is_named():
    from allennlp_structkd.ray_annotation import RayUnavailableError, check_address

    with pytest.raises(RayUnavailableError, match="'headnode' is not HOST:PORT"):
        check_address("headnode")


def test_a_wave_is_cut_into_blocks_of_whole_chunks_that_keep_every_worker_busy():
    from allennlp_structkd.ray_annotation import BLOCK_SENTENCES, rebalance

    # 1,200 sentences in chunks of 64 (the last one shorter), read as the driver reads them: 1,024 and 176
    rows = [{"chunk": i // 64, "key": str(i)} for i in range(1200)]
    wave = [rows[:1024], rows[1024:]]
    blocks = rebalance(wave, workers=2)
    assert [row for block in blocks for row in block] == rows  # every row once, in order
    assert len(blocks) >= 8  # four a worker
    chunks = [{row["chunk"] for row in block} for block in blocks]
    assert all(not (a & b) for a, b in zip(chunks, chunks[1:]))  # no chunk split between blocks
    assert max(len(b) for b in blocks) <= 2 * min(len(b) for b in blocks[:-1])  # about equal
    big = [{"chunk": i // 64, "key": str(i)} for i in range(50_000)]
    assert max(len(b) for b in rebalance([big], workers=1)) <= BLOCK_SENTENCES
    assert rebalance([], workers=2) == []


# Put on PYTHONPATH, this makes the first teacher actor to receive a batch exit mid-run (the file named by
# STRUCTKD_TEST_DIE_ONCE is created by the one that dies): Ray must restart it and retry the batch. The patch is
# applied when the module is imported, in whichever process imports it (only actors call __call__).
_DIE_ONCE = '''
import importlib.abc, importlib.machinery, os, sys

class _Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "allennlp_structkd.ray_annotation":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            call = module._TeacherActor.__call__

            def dying_call(self, batch):
                try:
                    os.close(os.open(os.environ["STRUCTKD_TEST_DIE_ONCE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    return call(self, batch)
                os._exit(1)  # the worker process dies with its batch unfinished

            module._TeacherActor.__call__ = dying_call
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Patch())
'''


def test_a_worker_that_dies_loses_only_its_batch_which_is_retried(teacher_archive, transfer, reference, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_DIE_ONCE)
    died = tmp_path / "died"
    env = dict(_env(teacher_archive, tmp_path / "cache"), STRUCTKD_TEST_DIE_ONCE=str(died),
               PYTHONPATH=os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p))
    out = _annotate(env, transfer, "--engine", "ray", "--workers", "2")
    assert died.exists()  # a worker did die
    assert "34 sentences: 34 annotated by the teachers, 0 already cached" in out
    _assert_same(_entries(tmp_path / "cache"), reference)  # its batch retried: every target, as one process gives them

import copy
import json
import os
import shutil

import numpy as np
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader

import allennlp_structkd  # noqa: F401
from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader
from allennlp_structkd.kd import cache as cache_module
from allennlp_structkd.kd.cache import TeacherCache
from allennlp_structkd.kd.teacher_archive import UntrainedTeacherError
from tests.conftest import FIXTURES

DATA = FIXTURES / "data"
TRAIN = json.dumps({"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")})
BASE = {"type": "structkd_conll_ner", "token_indexers": {"tokens": {"type": "single_id"}}}


def make_reader(teacher, cache_dir, objective=None, **extra) -> TeacherAnnotatingReader:
    params = {
        "type": "structkd_teacher",
        "base_reader": copy.deepcopy(BASE),
        "teachers": {"es": teacher, "nl": teacher},
        "objective": objective or {"type": "structural"},
        "cache_directory": str(cache_dir),
        "batch_size": 2,
        **extra,
    }
    return DatasetReader.from_params(Params(params))


def test_annotates_every_instance_with_the_objectives_targets(teacher_archive, tmp_path):
    reader = make_reader(teacher_archive, tmp_path)
    instances = list(reader.read(TRAIN))
    assert len(instances) == 4
    for instance in instances:
        n = len(instance["metadata"]["words"])
        targets = instance["teacher_targets"].targets
        unary, pairwise = torch.from_numpy(targets["teacher_unary"]), torch.from_numpy(targets["teacher_pairwise"])
        assert unary.shape == (n, len(reader.teacher("es").labels))
        torch.testing.assert_close(unary.sum(-1), torch.ones(n))
        assert pairwise.shape[:1] == (n,) and (pairwise[0] == 0).all()
        assert instance["has_gold"].tensor.item() == 1
        assert instance["teacher_targets"].labels == reader.teacher("es").labels
    assert reader.teacher_calls == 4


def test_targets_equal_the_teachers_own_marginals(teacher_archive, tmp_path):
    from allennlp.models.archival import load_archive

    reader = make_reader(teacher_archive, tmp_path)
    (first, *_) = list(reader.read(TRAIN))
    archive = load_archive(teacher_archive)
    archive.model.eval()
    instance = archive.dataset_reader.text_to_instance(first["metadata"]["words"])
    output = archive.model.forward_on_instance(instance)
    np.testing.assert_allclose(first["teacher_targets"].targets["teacher_unary"], output["probs"], rtol=1e-5, atol=1e-6)


def test_second_epoch_and_second_run_never_call_the_teacher(teacher_archive, tmp_path):
    reader = make_reader(teacher_archive, tmp_path)
    first = list(reader.read(TRAIN))
    calls = reader.teacher_calls
    second = list(reader.read(TRAIN))
    assert reader.teacher_calls == calls  # second epoch: all from the cache
    fresh = make_reader(teacher_archive, tmp_path)  # a second run
    third = list(fresh.read(TRAIN))
    assert fresh.teacher_calls == 0
    for a, b, c in zip(first, second, third):
        np.testing.assert_array_equal(a["teacher_targets"].targets["teacher_unary"], c["teacher_targets"].targets["teacher_unary"])
        np.testing.assert_array_equal(a["teacher_targets"].targets["teacher_pairwise"], b["teacher_targets"].targets["teacher_pairwise"])


def test_cache_is_keyed_by_objective_and_temperature(teacher_archive, tmp_path):
    list(make_reader(teacher_archive, tmp_path).read(TRAIN))
    hot = make_reader(teacher_archive, tmp_path, {"type": "structural", "temperature": 3.0})
    tempered = list(hot.read(TRAIN))
    assert hot.teacher_calls == 4
    cold = list(make_reader(teacher_archive, tmp_path).read(TRAIN))
    # a higher temperature flattens the marginals
    assert tempered[0]["teacher_targets"].targets["teacher_unary"].max() < cold[0]["teacher_targets"].targets["teacher_unary"].max()


def test_a_changed_teacher_is_not_served_from_the_cache(teacher_archive, tmp_path):
    list(make_reader(teacher_archive, tmp_path).read(TRAIN))
    # the same model re-archived with a different weight is a different teacher
    changed = str(tmp_path / "changed.tar.gz")
    work = tmp_path / "unpacked"
    shutil.unpack_archive(teacher_archive, work)
    weights = torch.load(work / "weights.th")
    weights["transitions"] = weights["transitions"] + 1.0
    torch.save(weights, work / "weights.th")
    shutil.make_archive(changed[: -len(".tar.gz")], "gztar", work)
    reader = make_reader(changed, tmp_path)
    list(reader.read(TRAIN))
    assert reader.teacher_calls == 4


def test_a_write_killed_midway_leaves_no_entry(tmp_path, monkeypatch):
    cache = TeacherCache(str(tmp_path), "abc")
    cache.put_many([("a", {"x": np.ones(2)})])
    real_encode = cache_module.encode_entry
    calls = {"n": 0}

    def dying_encode(entry):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_encode(entry)

    monkeypatch.setattr(cache_module, "encode_entry", dying_encode)
    with pytest.raises(KeyboardInterrupt):
        cache.put_many([("b", {"x": np.zeros(2)}), ("c", {"x": np.zeros(2)})])
    assert len(cache) == 1 and set(cache.get_many(["a", "b", "c"])) == {"a"}


def test_unlabeled_sentences_get_placeholder_tags_and_no_gold(teacher_archive, tmp_path):
    reader = make_reader(teacher_archive, tmp_path, {"type": "top1"})
    spec = json.dumps({"labeled": json.loads(TRAIN), "unlabeled": {"es": str(DATA / "unlabeled.txt")}})
    instances = list(reader.read(spec))
    assert [i["has_gold"].tensor.item() for i in instances] == [1, 1, 1, 1, 0, 0]
    unlabeled = instances[-1]
    assert len(unlabeled["tags"].labels) == len(unlabeled["metadata"]["words"])
    assert unlabeled["teacher_targets"].targets["teacher_kbest_tags"].shape == (1, len(unlabeled["metadata"]["words"]))


def test_language_without_teacher_is_a_clear_error(teacher_archive, tmp_path):
    params = Params({"type": "structkd_teacher", "base_reader": copy.deepcopy(BASE), "teachers": {"es": teacher_archive},
                     "objective": {"type": "structural"}, "cache_directory": str(tmp_path)})
    reader = DatasetReader.from_params(params)
    with pytest.raises(ConfigurationError, match="no teacher for language 'nl'"):
        list(reader.read(TRAIN))
    params = Params({"type": "structkd_teacher", "base_reader": copy.deepcopy(BASE), "teachers": {"es": teacher_archive},
                     "default_teacher": "es", "objective": {"type": "structural"}, "cache_directory": str(tmp_path)})
    assert len(list(DatasetReader.from_params(params).read(TRAIN))) == 4


def test_missing_archive_and_bad_default(tmp_path):
    # a distilled student's archive rebuilds this reader: loading it (to evaluate or serve the student)
    # needs no teacher; reading training data with a missing teacher fails at once, naming it
    reader = make_reader(str(tmp_path / "nope.tar.gz"), tmp_path)
    with pytest.raises(ConfigurationError, match="teacher archive not found: .*nope.tar.gz"):
        next(iter(reader.read(TRAIN)))
    with pytest.raises(ConfigurationError, match="default_teacher"):
        make_reader("x", tmp_path, default_teacher="de")


def test_gold_labels_no_teacher_has_are_an_error(teacher_archive, tmp_path):
    path = tmp_path / "odd.conll"
    path.write_text("a B-WEIRD\nb O\n")
    reader = make_reader(teacher_archive, tmp_path)
    with pytest.raises(ConfigurationError, match=r"odd.conll, line 1: gold labels \['S-WEIRD'\]"):
        list(reader.read(json.dumps({"es": str(path)})))


def test_teacher_from_a_config_is_trained_once(tmp_path, monkeypatch):
    monkeypatch.setenv("STRUCTKD_TEST_DATA", str(DATA))
    config = str(FIXTURES / "configs" / "crf_tagger.jsonnet")
    reader = make_reader(config, tmp_path)
    with pytest.raises(UntrainedTeacherError):  # reading never trains it
        reader.teacher("es")
    [(lang, said)] = reader.prepare_teachers([TRAIN])  # one config for both languages: trained once, by the explicit step
    assert lang == "es" and "training it once" in said
    trained = reader.teacher("es").archive_path
    assert trained.startswith(str(tmp_path)) and os.path.isfile(trained)
    mtime = os.path.getmtime(trained)
    again = make_reader(config, tmp_path)
    assert again.prepare_teachers([TRAIN]) == []
    assert again.teacher("es").archive_path == trained and os.path.getmtime(trained) == mtime


def test_sharded_annotation_fills_the_cache_for_training(teacher_archive, tmp_path):
    shards = [make_reader(teacher_archive, tmp_path) for _ in range(2)]
    counts = [reader.annotate_shard(TRAIN, shard, 2) for shard, reader in enumerate(shards)]
    assert counts == [2, 2] and sum(r.teacher_calls for r in shards) == 4
    trainer_reader = make_reader(teacher_archive, tmp_path)
    assert len(list(trainer_reader.read(TRAIN))) == 4 and trainer_reader.teacher_calls == 0


def test_annotation_batches_by_length_give_the_same_targets_in_input_order(teacher_archive, tmp_path, monkeypatch):
    """Sorting by length and splitting a chunk under the cost bound changes nothing but memory."""
    whole = {i["metadata"]["sentence_id"]: i["teacher_targets"].targets
             for i in make_reader(teacher_archive, tmp_path / "a", batch_size=8).read(TRAIN)}
    teacher = make_reader(teacher_archive, tmp_path / "b").teacher("es")
    monkeypatch.setattr(type(teacher), "MAX_BATCH_CELLS", 1)  # one sentence a batch
    calls = []
    original = type(teacher)._annotate_batch
    monkeypatch.setattr(type(teacher), "_annotate_batch", lambda self, s, o: calls.append(len(s)) or original(self, s, o))
    reader = make_reader(teacher_archive, tmp_path / "b", batch_size=8)
    split = {i["metadata"]["sentence_id"]: i["teacher_targets"].targets for i in reader.read(TRAIN)}
    assert calls and max(calls) == 1 and sum(calls) == len(whole)
    assert list(split) == list(whole)
    for key, targets in whole.items():
        for name, value in targets.items():
            np.testing.assert_allclose(split[key][name], value, rtol=1e-5, atol=1e-6)


def _conllu(words_and_tags):
    lines = [f"{i}\t{w}\t_\t{pos}\t_\t_\t{0 if i == 1 else 1}\t{'root' if i == 1 else 'obj'}\t_\t_"
             for i, (w, pos) in enumerate(words_and_tags, start=1)]
    return "\n".join(lines) + "\n\n"


def test_cache_key_covers_every_input_the_teacher_reads(parser_archive, tmp_path):
    """A parser teacher that embeds UPOS: the same words with other tags are another teacher input."""
    from tests.conftest import write

    words = ["The", "dog", "saw", "cats"]
    first = write(tmp_path, "a.conllu", _conllu(zip(words, ["DET", "NOUN", "VERB", "NOUN"])))
    second = write(tmp_path, "b.conllu", _conllu(zip(words, ["NOUN", "VERB", "DET", "ADJ"])))
    params = lambda: Params({"type": "structkd_teacher", "base_reader": {"type": "structkd_conllu", "tag_column": "relpos"},  # noqa: E731
                             "teachers": {"xx": parser_archive}, "objective": {"type": "structural"},
                             "cache_directory": str(tmp_path / "cache")})
    reader = DatasetReader.from_params(params())
    (a,) = list(reader.read(first))
    assert reader.teacher_calls == 1
    (b,) = list(reader.read(second))
    assert reader.teacher_calls == 2  # not the cached targets of the other tags
    heads_a, heads_b = (x["teacher_targets"].targets["teacher_head_probs"] for x in (a, b))
    assert not np.allclose(heads_a, heads_b)
    again = DatasetReader.from_params(params())
    (b2,) = list(again.read(second))
    assert again.teacher_calls == 0
    np.testing.assert_array_equal(b2["teacher_targets"].targets["teacher_head_probs"], heads_b)


def test_the_annotate_command_says_it_trains_a_teacher_config_and_leaks_nothing(tmp_path):
    """A teacher given as a config is trained first, said so with its log's path; two workers share one lock."""
    import os
    import subprocess
    import sys

    from tests.conftest import FIXTURES

    env = dict(os.environ, STRUCTKD_TEST_DATA=str(FIXTURES / "data"), STRUCTKD_TEST_TEACHER=str(FIXTURES / "configs" / "crf_tagger.jsonnet"),
               STRUCTKD_TEST_OBJECTIVE=json.dumps({"type": "structural"}), STRUCTKD_TEST_DECODER="structkd_crf_tagger",
               STRUCTKD_TEST_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "allennlp_structkd.annotate", str(FIXTURES / "configs" / "kd_student.jsonnet"),
                             "--workers", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is a training config" in result.stdout and "training it once (its log: " in result.stdout
    assert "annotated by the teachers" in result.stdout
    assert "leaked" not in result.stderr
    teachers = list((tmp_path / "cache" / "teachers").glob("*.log"))
    assert teachers and all(log.stat().st_size > 0 for log in teachers)


def test_only_the_teachers_of_the_languages_read_are_loaded(teacher_archive, tmp_path):
    """A Spanish-only run of a config that names a Dutch teacher too never loads (or trains) the Dutch one."""
    # a teacher config whose data does not exist: training it would fail
    config = tmp_path / "teacher_nl.jsonnet"
    config.write_text(f"(import '{FIXTURES / 'configs' / 'crf_tagger.jsonnet'}') + "
                      f"{{ train_data_path: '{tmp_path / 'missing.conll'}', validation_data_path: '{tmp_path / 'missing.conll'}' }}")
    params = Params({"type": "structkd_teacher", "base_reader": copy.deepcopy(BASE),
                     "teachers": {"es": teacher_archive, "nl": str(config)}, "objective": {"type": "structural"},
                     "cache_directory": str(tmp_path / "cache")})
    reader = DatasetReader.from_params(params)
    instances = list(reader.read(json.dumps({"es": str(DATA / "ner_es.conll")})))
    assert instances and {i["metadata"]["lang"] for i in instances} == {"es"}
    assert len(reader.loaded_teachers()) == 1
    assert reader.prepare_teachers([json.dumps({"es": str(DATA / "ner_es.conll")})]) == []  # nor trains it first
    assert not (tmp_path / "cache" / "teachers").exists()
    # the checks check: reading Dutch loads it (untrained: a clear error), and the step that trains it, trains it
    with pytest.raises(UntrainedTeacherError, match="has not been trained"):
        list(reader.read(json.dumps({"nl": str(DATA / "ner_nl.conll")})))
    with pytest.raises(Exception, match="missing.conll"):
        reader.prepare_teachers([json.dumps({"nl": str(DATA / "ner_nl.conll")})])

"""`make demo`: its real data, the labeled/unlabeled split, and the KD run it makes (labeled CoNLL-U + unlabeled text)."""
import json
import os
import subprocess

from allennlp.common import Params
from allennlp.data import Batch, DatasetReader, Vocabulary

import allennlp_structkd  # noqa: F401
from allennlp_structkd.dataset_readers import ConlluReader
from experiments import demo_job
from tests.conftest import SAMPLE_DATA

UD = str(SAMPLE_DATA / "ud_en_small.conllu")


def test_the_default_demo_data_is_real_and_licensed():
    for name in ("train.conllu", "dev.conllu", "LICENSE.txt", "README.md"):
        assert os.path.isfile(os.path.join(demo_job.DEMO_DATA, name)), name
    with open(os.path.join(demo_job.DEMO_DATA, "LICENSE.txt")) as handle:
        assert "Attribution-ShareAlike 4.0" in handle.read()
    sentences = list(ConlluReader(read_heads=False).read(os.path.join(demo_job.DEMO_DATA, "train.conllu")))
    assert len(sentences) == 1600
    # beside the job, in the checkout's tooling (not in the installed library)
    assert os.path.dirname(os.path.dirname(demo_job.DEMO_DATA)) == os.path.dirname(os.path.abspath(demo_job.__file__))


def test_split_keeps_the_first_sentences_labeled_and_the_rest_as_text(tmp_path):
    split = demo_job.split_labeled({"en": UD}, 3, str(tmp_path))["en"]
    everything = [i["metadata"]["words"] for i in ConlluReader(read_heads=False).read(UD)]
    kept = [i["metadata"]["words"] for i in ConlluReader(read_heads=False).read(split.labeled)]
    assert kept == everything[:3]
    with open(split.transfer, encoding="utf-8") as handle:
        lines = [line.split() for line in handle.read().splitlines()]
    assert lines == everything[3:] and split.dropped == 0  # words only: no comments, ranges or empty nodes
    gold = [i["metadata"]["words"] for i in ConlluReader(read_heads=False).read(split.gold)]
    assert gold == everything  # the reference: the labeled part and the transfer text, with their gold labels


def test_transfer_sentences_that_repeat_a_labeled_or_dev_sentence_are_dropped(tmp_path):
    from allennlp_structkd.dataset_readers import ConllNerReader

    train = tmp_path / "en.train"
    train.write_text("A O\n\nB O\n\nA O\n\nC O\n\nD O\n\n")
    dev = tmp_path / "en.dev"
    dev.write_text("C O\n\n")
    split = demo_job.split_labeled({"en": str(train)}, 2, str(tmp_path / "out"), {"en": str(dev)})["en"]
    with open(split.transfer) as handle:
        assert handle.read() == "D\n"
    assert split.dropped == 2 and split.transfer_count == 1
    assert [i["metadata"]["words"] for i in ConllNerReader().read(split.gold)] == [["A"], ["B"], ["D"]]


def test_labeled_conllu_and_unlabeled_text_batch_together(tmp_path):
    """The demo's KD run: labeled CoNLL-U instances have PoS fields that text lines cannot have."""
    from allennlp.commands.train import train_model_from_file

    env = {"STRUCTKD_TASK": "upos", "TAGGING_TRAIN": UD, "TAGGING_DEV": UD, "STRUCTKD_TEACHER_EPOCHS": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        train_model_from_file(os.path.join(demo_job.CONFIGS, "teachers", "crf_tagger.jsonnet"), str(tmp_path / "teacher"))
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    split = demo_job.split_labeled({"en": UD}, 3, str(tmp_path / "data"))["en"]
    labeled, unlabeled = {"en": split.labeled}, {"en": split.transfer}
    reader = DatasetReader.from_params(Params({
        "type": "structkd_teacher", "base_reader": {"type": "structkd_conllu", "tag_column": "upos", "read_heads": False},
        "teachers": {"en": str(tmp_path / "teacher" / "model.tar.gz")}, "objective": {"type": "structural"},
        "cache_directory": str(tmp_path / "cache")}))
    instances = list(reader.read(json.dumps({"labeled": labeled, "unlabeled": unlabeled})))
    assert sorted({int(i["has_gold"].tensor) for i in instances}) == [0, 1]
    assert instances[0]["metadata"]["upos"]  # the labeled sentences' tags stay in their metadata
    vocab = Vocabulary.from_instances(instances)
    batch = Batch(instances)  # failed before: "Field 'upos' present in some Instances but not others"
    batch.index_instances(vocab)
    assert batch.as_tensor_dict()["tokens"]["tokens"]["tokens"].size(0) == len(instances)


def test_split_of_conll_column_files_skips_document_markers(tmp_path):
    from allennlp_structkd.dataset_readers import ConllNerReader

    path = tmp_path / "ned.train"
    path.write_text("-DOCSTART- -DOCSTART- O\n\nJan PROPN B-PER\nwoont VERB O\n\nIn ADP O\nGent PROPN B-LOC\n\nDag X O\n\n")
    split = demo_job.split_labeled({"nl": str(path)}, 2, str(tmp_path / "out"))["nl"]
    kept = [i["metadata"]["words"] for i in ConllNerReader().read(split.labeled)]
    assert kept == [["Jan", "woont"], ["In", "Gent"]]
    with open(split.transfer, encoding="utf-8") as handle:
        assert handle.read() == "Dag\n"


def test_a_step_trained_with_the_same_settings_and_data_is_kept_and_earlier_logs_too(tmp_path, monkeypatch, capsys):
    from experiments import demo_job

    calls = []

    def fake_train(command, config, _s, folder, _f, env, log, append):
        calls.append(folder)
        os.makedirs(folder, exist_ok=True)
        with open(log, "w") as handle:
            handle.write(f"run {len(calls)}\n")
        with open(os.path.join(folder, "metrics.json"), "w") as handle:
            json.dump({"best_validation_accuracy": 0.5, "run": len(calls)}, handle)
        with open(os.path.join(folder, "model.tar.gz"), "wb") as handle:
            handle.write(b"archive")
        return subprocess.CompletedProcess([], 0)

    monkeypatch.setattr(demo_job, "run_allennlp", fake_train)
    config, data = tmp_path / "c.jsonnet", tmp_path / "train.conllu"
    config.write_text("{}")
    data.write_text("1\ta\n")
    env = {"TAGGING_TRAIN": json.dumps({"en": str(data)}), "STRUCTKD_SEED": "13", "STRUCTKD_EPOCHS": "2"}
    folder = str(tmp_path / "student")
    assert demo_job.train_step(str(config), folder, env, "s", "[2/5]")["run"] == 1
    assert demo_job.train_step(str(config), folder, env, "s", "[2/5]")["run"] == 1  # kept: same config, settings, data
    assert "kept from an earlier run with the same settings" in capsys.readouterr().out
    data.write_text("1\tb\n")  # the data changed: trained again
    assert demo_job.train_step(str(config), folder, env, "s", "[2/5]")["run"] == 2
    assert demo_job.train_step(str(config), folder, dict(env, STRUCTKD_EPOCHS="3"), "s", "[2/5]")["run"] == 3
    assert demo_job.train_step(str(config), folder, dict(env, STRUCTKD_EPOCHS="3"), "s", "[2/5]", fresh=True)["run"] == 4
    assert len(calls) == 4
    logs = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("student.log"))
    assert logs == ["student.log", "student.log.1", "student.log.2", "student.log.3"]  # no log overwritten
    assert (tmp_path / "student.log.1").read_text() == "run 1\n"

"""`make demo`: its real data, the labeled/unlabeled split, and the KD run it makes (labeled CoNLL-U + unlabeled text)."""
import json
import os

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

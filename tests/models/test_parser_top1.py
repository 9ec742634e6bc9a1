"""The Top-1 baseline of Cases 1b/2b: a parser teacher's best trees as pseudo labels and one-hot targets."""
import pytest
import torch
from allennlp.common import Params
from allennlp.common.testing import ModelTestCase
from allennlp.data import DatasetReader
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

import allennlp_structkd  # noqa: F401
from allennlp_structkd.structures import rel_pos
from tests.conftest import FIXTURES, SAMPLE_DATA

UD = SAMPLE_DATA / "ud_en_small.conllu"
CONFIG = FIXTURES.parent.parent / "training_configs" / "baseline_top1_parser.jsonnet"


@pytest.fixture
def top1_env(parser_archive, monkeypatch, tmp_path):
    for name in ("PARSE_TRAIN", "PARSE_DEV", "PARSE_UNLABELED"):
        monkeypatch.setenv(name, str(UD))
    monkeypatch.setenv("PARSE_FORMAT", "conllu")
    monkeypatch.setenv("BIAFFINE_TEACHER", parser_archive)
    monkeypatch.setenv("STRUCTKD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("STRUCTKD_EPOCHS", "1")
    return parser_archive


def test_unlabeled_sentences_get_the_teachers_best_tree(top1_env):
    params = Params.from_file(str(CONFIG))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(params.pop("train_data_path")))
    unlabeled = [i for i in instances if i["has_gold"].tensor.item() == 0]
    labeled = [i for i in instances if i["has_gold"].tensor.item() == 1]
    assert unlabeled and len(labeled) == len(unlabeled)
    assert all(set(i.fields) == set(labeled[0].fields) for i in instances)  # they batch together
    teacher = Predictor.from_archive(load_archive(top1_env), "structkd_parser")
    for instance in unlabeled:
        meta = instance["metadata"].metadata
        tree = teacher.predict_json({"tokens": meta["words"], "upos": meta["upos"]})
        labels = instance["tags"].labels
        # the pseudo labels are the teacher's maximum spanning tree and its deprels, relative-PoS encoded
        assert rel_pos.decode([label.rpartition("@")[0] for label in labels], meta["upos"]) == tree["predicted_heads"]
        assert [label.rpartition("@")[2] for label in labels] == tree["predicted_dependencies"]
        heads = torch.as_tensor(instance["teacher_targets"].targets["teacher_head_probs"])
        assert heads.argmax(1).tolist() == tree["predicted_heads"] and torch.equal(heads.sum(1), torch.ones(len(labels)))
        assert set(heads.unique().tolist()) <= {0.0, 1.0}  # one-hot: the Top-1 loss is -log P_s(best tree's labels)


def test_top1_student_can_train_save_and_load(top1_env):
    case = ModelTestCase()
    case.setup_method()
    try:
        case.set_up_model(CONFIG, str(UD))
        # one batch: the bucket sampler's shuffling would otherwise order the two compared batches differently
        one_batch = '{"data_loader": {"batch_sampler": {"type": "bucket", "batch_size": 128, "padding_noise": 0.0}}}'
        case.ensure_model_can_train_save_and_load(str(CONFIG), overrides=one_batch)
    finally:
        case.teardown_method()

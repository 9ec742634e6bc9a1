"""Cases 1b and 2b: graph-parser teachers distilled into the sequence-labeling parser."""

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common.testing import ModelTestCase

import allennlp_structkd  # noqa: F401
from allennlp_structkd.models.seq_label_parser import split_label
from allennlp_structkd.structures import rel_pos
from tests.conftest import FIXTURES, SAMPLE_DATA

UD = SAMPLE_DATA / "ud_en_small.conllu"


@pytest.fixture(scope="module", params=["biaffine", "second_order"])
def parser_teacher(request, tmp_path_factory):
    import os

    os.environ["STRUCTKD_TEST_PARSER"] = request.param
    directory = tmp_path_factory.mktemp(request.param)
    train_model_from_file(str(FIXTURES / "configs" / "parser.jsonnet"), str(directory / "run"))
    return str(directory / "run" / "model.tar.gz")


@pytest.fixture
def student_case(parser_teacher, monkeypatch, tmp_path):
    monkeypatch.setenv("STRUCTKD_TEST_TEACHER", parser_teacher)
    monkeypatch.setenv("STRUCTKD_TEST_CACHE", str(tmp_path / "cache"))
    case = ModelTestCase()
    case.setup_method()
    case.set_up_model(FIXTURES / "configs" / "kd_parser_student.jsonnet", str(UD))
    yield case
    case.teardown_method()


def test_student_can_train_save_and_load(student_case):
    student_case.ensure_model_can_train_save_and_load(student_case.param_file)


def test_teacher_distribution_on_relative_pos_labels_matches_a_loop(student_case):
    model = student_case.model
    batch = student_case.dataset.as_tensor_dict()
    targets = batch["teacher_targets"]
    mask = batch["tokens"]["tokens"]["tokens"] > 0
    mapped = model.teacher_label_distribution(targets["teacher_head_probs"], targets["teacher_deprel_probs"], batch["upos"], mask)
    labels = model.labels
    deprels = [model.vocab.get_token_from_index(i, "head_tags") for i in range(model.vocab.get_vocab_size("head_tags"))]
    for b, meta in enumerate(batch["metadata"][:6]):
        n = len(meta["words"])
        torch.testing.assert_close(mapped[b, :n].sum(-1), torch.ones(n))
        for m in range(1, n + 1):
            expected = torch.zeros(len(labels))
            for h in range(n + 1):
                if h == m:
                    continue
                heads = [0] * n
                heads[m - 1] = h
                part = rel_pos.encode(heads, meta["upos"])[m - 1]
                for r, deprel in enumerate(deprels):
                    label = f"{part}@{deprel}"
                    if label in labels:
                        expected[labels.index(label)] += targets["teacher_head_probs"][b, m - 1, h] * targets["teacher_deprel_probs"][b, m - 1, r]
            torch.testing.assert_close(mapped[b, m - 1], expected / expected.sum(), atol=1e-6, rtol=1e-5)


def test_kd_loss_is_the_cross_entropy_with_the_mapped_distribution(student_case):
    model = student_case.model
    model.eval()
    batch = student_case.dataset.as_tensor_dict()
    model.kd_weight = 1.0
    output = model(**batch)
    targets = batch["teacher_targets"]
    mask = batch["tokens"]["tokens"]["tokens"] > 0
    mapped = model.teacher_label_distribution(targets["teacher_head_probs"], targets["teacher_deprel_probs"], batch["upos"], mask)
    log_probs = output["logits"].log_softmax(-1)
    expected = -(mapped * log_probs).nan_to_num().sum((1, 2))
    torch.testing.assert_close(output["kd_loss"], expected, atol=1e-5, rtol=1e-5)


def test_split_label():
    assert split_label("+1@NOUN@nsubj") == ("+1@NOUN", "nsubj")
    assert split_label("-2@NN") == ("-2@NN", None)
    assert split_label("+1@NOUN@obl:tmod") == ("+1@NOUN", "obl:tmod")


def test_label_tables_follow_the_model_to_another_device(student_case):
    """The relative-PoS lookup tables are (non-persistent) buffers, so .to(device) moves them."""
    import copy

    model = copy.deepcopy(student_case.model)
    buffers = dict(model.named_buffers())
    assert "_part_table" in buffers and "_joint" in buffers
    assert "_part_table" not in model.state_dict()  # rebuilt from the vocabulary, not archived
    model.to("meta")
    assert model._part_table.device.type == "meta" and model._joint.device.type == "meta"

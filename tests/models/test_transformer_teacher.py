"""A transformer teacher over wordpieces distils into a word-level student: KD works on words."""
import json

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.data import DatasetReader

import allennlp_structkd  # noqa: F401
from tests.conftest import FIXTURES, SAMPLE_DATA

DATA = FIXTURES / "data"
TRAIN = json.dumps({"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")})


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A 1-layer BERT with a small wordpiece vocabulary, built from a config in code (no download)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    words = set()
    for path in (DATA / "ner_es.conll", DATA / "ner_nl.conll"):
        words.update(line.split()[0] for line in path.read_text().splitlines() if line.strip())
    # allennlp probes the tokenizer with the words "a" and "b"
    pieces = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"}
    for word in words:  # split every word into two pieces, so wordpieces and words never line up
        pieces.add(word[:2])
        if len(word) > 2:
            pieces.add("##" + word[2:])
    directory = tmp_path_factory.mktemp("tiny_bert")
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(sorted(pieces)) + "\n")
    tokenizer = BertTokenizer(str(vocab_file), do_lower_case=False)
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(vocab_size=len(pieces), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(directory))
    return str(directory)


def test_transformer_teacher_distils_into_a_word_level_student(tiny_bert, tmp_path):
    teacher_config = tmp_path / "teacher.json"
    teacher_config.write_text(json.dumps({
        "dataset_reader": {"type": "structkd_conll_ner",
                           "token_indexers": {"tokens": {"type": "pretrained_transformer_mismatched", "model_name": tiny_bert}}},
        "train_data_path": TRAIN,
        "validation_data_path": TRAIN,
        "model": {"type": "structkd_crf_tagger", "label_encoding": "BIOES",
                  "text_field_embedder": {"token_embedders": {"tokens": {
                      "type": "pretrained_transformer_mismatched", "model_name": tiny_bert}}}},
        "data_loader": {"batch_size": 2},
        "trainer": {"optimizer": {"type": "adam", "lr": 0.001}, "num_epochs": 1, "cuda_device": -1},
    }))
    archive = str(tmp_path / "teacher" / "model.tar.gz")
    train_model_from_file(str(teacher_config), str(tmp_path / "teacher"))
    reader = DatasetReader.from_params(Params({
        "type": "structkd_teacher",
        "base_reader": {"type": "structkd_conll_ner"},  # the student reads words
        "teachers": {"es": archive, "nl": archive},
        "objective": {"type": "structural"},
        "cache_directory": str(tmp_path / "cache"),
    }))
    for instance in reader.read(TRAIN):
        n = len(instance["metadata"]["words"])
        unary = instance["teacher_targets"].targets["teacher_unary"]
        assert unary.shape[0] == n  # one distribution per word, not per wordpiece
        assert abs(unary.sum() - n) < 1e-4


@pytest.mark.parametrize("layer,pooling", [("", "avg"), ("1", "first")])
def test_xtremedistil_targets_from_a_transformer_teacher(tiny_bert, tmp_path, monkeypatch, layer, pooling):
    """D2 end to end on the fixtures: teacher logits and hidden states (the last layer, or layer 1 with
    first-wordpiece pooling) cached, the student trains on them."""
    from allennlp.common.testing import ModelTestCase

    monkeypatch.setenv("TEACHER_LAYER", layer)
    monkeypatch.setenv("TRANSFORMER_POOLING", pooling)
    monkeypatch.setenv("TRANSFORMER_MODEL", str(SAMPLE_DATA / "tiny_bert"))
    monkeypatch.setenv("STRUCTKD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("STRUCTKD_TEACHER_EPOCHS", "1")
    monkeypatch.setenv("STRUCTKD_EPOCHS", "1")
    monkeypatch.setenv("TAGGING_TRAIN", TRAIN)
    monkeypatch.setenv("TAGGING_DEV", TRAIN)
    config = FIXTURES.parent.parent / "training_configs" / "xtremedistil_d2.jsonnet"
    from allennlp_structkd.train_teachers import train_teachers

    # the explicit step before reading (AllenNLP's test case reads the data itself, not through a training run)
    assert [lang for lang, _ in train_teachers(str(config), [TRAIN])] == ["es"]
    case = ModelTestCase()
    case.setup_method()
    try:
        case.set_up_model(config, TRAIN)
        instance = case.instances[0]
        targets = instance["teacher_targets"].targets
        n = len(instance["metadata"]["words"])
        assert targets["teacher_hidden"].shape == (n, 32) and targets["teacher_logits"].shape[0] == n
        output = case.model(**case.dataset.as_tensor_dict())
        assert torch.isfinite(output["kd_loss"]).all() and (output["kd_loss"] > 0).all()
        case.ensure_model_can_train_save_and_load(str(config))
    finally:
        case.teardown_method()

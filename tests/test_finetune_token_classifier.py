"""The offline stand-in for a downloaded fine-tuned model: a token classifier fine-tuned on a CoNLL file and
saved as a standard Hugging Face folder, seeded, that the library then takes as a teacher."""
import json
import os

import pytest
import torch

from experiments.finetune_token_classifier import finetune, label_list, read_sentences
from tests.conftest import FIXTURES, SAMPLE_DATA

TRAIN = str(FIXTURES / "data" / "ner_es.conll")


def test_finetuning_saves_a_folder_the_library_takes_as_a_teacher(tmp_path):
    from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher, is_huggingface_folder

    sentences = read_sentences(TRAIN, "conll")
    assert sentences and all(len(words) == len(tags) for words, tags in sentences)
    assert label_list(sentences)[0] == "O" and all(t == "O" or t[:2] in ("B-", "I-") for t in label_list(sentences))
    record = finetune(str(SAMPLE_DATA / "tiny_bert"), sentences, sentences, str(tmp_path / "model"), epochs=2,
                      batch_size=2, seed=5, progress=False)
    folder = tmp_path / "model"
    assert is_huggingface_folder(str(folder)) and (folder / "tokenizer.json").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert [config["id2label"][str(i)] for i in range(len(record["labels"]))] == record["labels"]
    assert json.loads((folder / "training.json").read_text())["seed"] == 5 and len(record["history"]) == 2
    teacher = HuggingFaceTeacher(str(folder), -1, str(tmp_path / "cache"), "BIOES")
    assert "O" in teacher.labels


def test_the_same_seed_gives_the_same_weights(tmp_path):
    sentences = read_sentences(TRAIN, "conll")
    for name in ("a", "b"):
        finetune(str(SAMPLE_DATA / "tiny_bert"), sentences, [], str(tmp_path / name), epochs=1, batch_size=2, seed=7,
                 train_layers=1, progress=False)
    from safetensors.torch import load_file  # noqa: F401  (whichever format save_pretrained chose)

    def weights(folder):
        name = "pytorch_model.bin" if os.path.isfile(folder / "pytorch_model.bin") else "model.safetensors"
        return torch.load(folder / name) if name.endswith(".bin") else load_file(str(folder / name))

    first, second = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_it_never_replaces_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(SystemExit, match="is not a folder this tool wrote"):
        finetune(str(SAMPLE_DATA / "tiny_bert"), read_sentences(TRAIN, "conll"), [], str(tmp_path / "mine"), epochs=1,
                 progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_classification_layer_learns_at_its_own_rate(tmp_path, monkeypatch):
    groups = []
    real_adamw = torch.optim.AdamW

    def recording_adamw(params, **kwargs):
        groups.extend(dict(group, params=list(group["params"])) for group in params)  # before the schedule changes lr
        return real_adamw(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", recording_adamw)
    record = finetune(str(SAMPLE_DATA / "tiny_bert"), read_sentences(TRAIN, "conll"), [], str(tmp_path / "model"), epochs=1,
                      lr=1e-4, head_lr=1e-2, batch_size=2, seed=3, progress=False)
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(str(tmp_path / "model"))
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    encoder, head = groups
    assert encoder["lr"] == 1e-4 and head["lr"] == 1e-2 and record["head_lr"] == 1e-2
    # the head: the classifier's weight and bias; the encoder: every other parameter
    assert sorted(p.numel() for p in head["params"]) == sorted(v for k, v in sizes.items() if k.startswith("classifier."))
    assert sum(p.numel() for p in encoder["params"]) == sum(v for k, v in sizes.items() if not k.startswith("classifier."))

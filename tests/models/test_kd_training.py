"""Students trained through the teacher-wrapping reader, end to end, and teacher annealing."""
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common.testing import ModelTestCase
from allennlp.training.callbacks.callback import TrainerCallback

import allennlp_structkd  # noqa: F401
from tests.conftest import FIXTURES

CONFIG = FIXTURES / "configs" / "kd_student.jsonnet"
DATA = FIXTURES / "data"
SPEC = json.dumps({
    "labeled": {"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")},
    "unlabeled": {"es": str(DATA / "unlabeled.txt")},
})


@pytest.fixture
def kd_env(monkeypatch, tmp_path):
    def configure(teacher, objective, decoder="structkd_crf_tagger"):
        monkeypatch.setenv("STRUCTKD_TEST_TEACHER", teacher)
        monkeypatch.setenv("STRUCTKD_TEST_OBJECTIVE", json.dumps(objective))
        monkeypatch.setenv("STRUCTKD_TEST_DECODER", decoder)
        monkeypatch.setenv("STRUCTKD_TEST_CACHE", str(tmp_path / "cache"))
    return configure


@pytest.mark.parametrize(
    "objective, decoder, teacher",
    [
        ({"type": "structural"}, "structkd_crf_tagger", "crf"),  # Case 1a
        ({"type": "structural"}, "structkd_maxent_tagger", "crf"),  # Case 2a
        ({"type": "structural"}, "structkd_crf_tagger", "maxent"),  # Case 3
        ({"type": "posterior+top_wk", "k": 3}, "structkd_crf_tagger", "crf"),
        ({"type": "token", "temperature": 2.0}, "structkd_maxent_tagger", "maxent"),
        ({"type": "structural"}, "structkd_maxent_tagger", "span"),  # Case 4
    ],
)
def test_student_can_train_save_and_load(kd_env, teacher_archive, maxent_teacher_archive, span_teacher_archive,
                                         objective, decoder, teacher):
    archives = {"crf": teacher_archive, "maxent": maxent_teacher_archive, "span": span_teacher_archive}
    kd_env(archives[teacher], objective, decoder)
    case = ModelTestCase()
    case.setup_method()
    try:
        case.set_up_model(CONFIG, SPEC)
        # unlabeled sentences and teacher fields go through training, saving and loading
        case.ensure_model_can_train_save_and_load(CONFIG)
        batch = case.dataset.as_tensor_dict()
        output = case.model(**batch)
        assert "kd_loss" in output and torch.isfinite(output["loss"])
        assert (batch["has_gold"] == 0).sum() == 2
    finally:
        case.teardown_method()


def test_unlabeled_sentences_train_on_kd_only(kd_env, teacher_archive):
    kd_env(teacher_archive, {"type": "structural"})
    case = ModelTestCase()
    case.setup_method()
    try:
        case.set_up_model(CONFIG, SPEC)
        batch = case.dataset.as_tensor_dict()
        model = case.model
        for weight in (0.0, 0.3, 1.0):
            model.kd_weight = weight
            out = model(**batch)
            gold = batch["has_gold"].bool()
            expected = torch.where(gold, weight * out["kd_loss"] + (1 - weight) * out["gold_loss"], out["kd_loss"]).mean()
            torch.testing.assert_close(out["loss"], expected)
    finally:
        case.teardown_method()


@TrainerCallback.register("test_crash_once")
class CrashOnce(TrainerCallback):
    """Simulates a killed run: raises after the given epoch while a flag file exists."""

    def __init__(self, serialization_dir: str, after_epoch: int, flag: str) -> None:
        super().__init__(serialization_dir)
        self.after_epoch = after_epoch
        self.flag = flag

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs):
        if epoch == self.after_epoch and os.path.exists(self.flag):
            os.remove(self.flag)
            raise RuntimeError("simulated crash")


def test_annealing_state_survives_recover(kd_env, teacher_archive, tmp_path):
    kd_env(teacher_archive, {"type": "structural"})
    flag = tmp_path / "crash"
    flag.write_text("x")
    serialization = str(tmp_path / "run")
    overrides = json.dumps({
        "trainer": {"optimizer": {"type": "adam", "lr": 0.01}, "num_epochs": 4, "cuda_device": -1, "callbacks": [
            {"type": "teacher_annealing", "initial_weight": 1.0, "anneal_rate": 0.2},
            {"type": "test_crash_once", "after_epoch": 1, "flag": str(flag)},
        ]},
    })
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_model_from_file(str(CONFIG), serialization, overrides)
    train_model_from_file(str(CONFIG), serialization, overrides, recover=True)
    # 4 epochs at anneal_rate 0.2: 1.0 -> 0.8 -> 0.6 -> 0.4 -> 0.2, across the crash
    states = sorted(f for f in os.listdir(serialization) if f.startswith("training_state"))
    last = torch.load(os.path.join(serialization, states[-1]), weights_only=False)
    assert last["callbacks"][0]["kd_weight"] == pytest.approx(0.2)

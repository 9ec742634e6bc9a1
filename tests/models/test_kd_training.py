"""Students trained through the teacher-wrapping reader, end to end, and teacher annealing."""
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common.testing import ModelTestCase
from allennlp.training.callbacks.callback import TrainerCallback

import allennlp_structkd  # noqa: F401
from tests.conftest import FIXTURES, SAMPLE_DATA

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
            {"type": "structkd_teacher_annealing", "initial_weight": 1.0, "anneal_rate": 0.2},
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


def test_the_reader_and_the_model_must_distil_the_same_objective(kd_env, teacher_archive, tmp_path):
    """An override of one side only (the reader's objective, or the model's kd_loss) fails before training."""
    from allennlp.common.checks import ConfigurationError

    kd_env(teacher_archive, {"type": "structural"})
    with pytest.raises(ConfigurationError, match=r"the reader's objective \(PosteriorKD\) and the model's kd_loss "
                                                 r"\(StructuralKD\) differ"):
        train_model_from_file(str(CONFIG), str(tmp_path / "a"),
                              overrides=json.dumps({"dataset_reader.objective.type": "posterior"}))
    with pytest.raises(ConfigurationError, match=r"reader's objective \(StructuralKD\) and the model's kd_loss \(TopKKD"):
        train_model_from_file(str(CONFIG), str(tmp_path / "b"), overrides=json.dumps({"model.kd_loss": {"type": "top_k", "k": 3}}))
    assert not any((tmp_path / name / "model_state_e0.th").exists() for name in ("a", "b"))


def test_a_loss_given_targets_of_another_objective_names_what_it_lacks():
    """Through the Python API, where no trainer compares them: the model's loss names the targets it needs."""
    from allennlp.common.checks import ConfigurationError

    from allennlp_structkd.kd.losses import KDLoss

    with pytest.raises(ConfigurationError, match=r"needs the teacher targets \['teacher_kbest_tags', 'teacher_kbest_weights'\], "
                                                 r"but the batch carries \['teacher_pairwise', 'teacher_unary'\]"):
        KDLoss.by_name("top_k")(k=3).check_targets({"teacher_unary": None, "teacher_pairwise": None})


def test_a_teacher_of_another_task_is_an_error_naming_it(kd_env, teacher_archive, tmp_path):
    """A UPOS tagger as the Spanish teacher of an NER student: its labels are not the student's labels."""
    from allennlp.common.checks import ConfigurationError

    upos_teacher = tmp_path / "upos_teacher"
    train_model_from_file(str(FIXTURES / "configs" / "crf_tagger.jsonnet"), str(upos_teacher), overrides=json.dumps({
        "dataset_reader.type": "structkd_conllu", "dataset_reader.read_heads": False, "dataset_reader.tag_column": "upos",
        "train_data_path": str(SAMPLE_DATA / "ud_en_small.conllu"), "validation_data_path": str(SAMPLE_DATA / "ud_en_small.conllu"),
        "model.label_encoding": None, "trainer.num_epochs": 1}))
    kd_env(teacher_archive, {"type": "structural"})
    with pytest.raises(ConfigurationError, match=rf"teacher {upos_teacher}/model.tar.gz \(language 'es'\) labels sentences "
                                                 r"with \['ADJ', .*: 0 of the \d+ labels of the student's gold data .* are among them"):
        train_model_from_file(str(CONFIG), str(tmp_path / "student"), overrides=json.dumps(
            {"dataset_reader.teachers": {"es": str(upos_teacher / "model.tar.gz"), "nl": teacher_archive}}))

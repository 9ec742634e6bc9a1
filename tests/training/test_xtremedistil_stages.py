"""XtremeDistil's stages: each stage trains only the groups it should, and --recover resumes in the right stage."""
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.training.callbacks.callback import TrainerCallback

import allennlp_structkd  # noqa: F401
from allennlp_structkd.training.callbacks import XtremeDistilStages
from tests.conftest import FIXTURES, SAMPLE_DATA
from tests.training.stand_ins import StandInStudent as Student

CONFIG = str(FIXTURES.parent.parent / "training_configs" / "xtremedistil_d42.jsonnet")
TRAIN = json.dumps({"es": str(FIXTURES / "data" / "ner_es.conll"), "nl": str(FIXTURES / "data" / "ner_nl.conll")})
SNAPSHOTS = {}


@TrainerCallback.register("test_snapshot")
class Snapshot(TrainerCallback):
    """Records every parameter at each epoch's end (``when``: before or after the stage callback)."""

    def __init__(self, serialization_dir: str, when: str) -> None:
        super().__init__(serialization_dir)
        self.when = when

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs):
        SNAPSHOTS[(self.when, epoch)] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name, value in {"TRANSFORMER_MODEL": str(SAMPLE_DATA / "tiny_bert"), "STRUCTKD_CACHE": str(tmp_path / "cache"),
                        "STRUCTKD_TEACHER_EPOCHS": "1", "TAGGING_TRAIN": TRAIN, "TAGGING_DEV": TRAIN}.items():
        monkeypatch.setenv(name, value)


def test_each_epoch_updates_only_its_groups(env, tmp_path):
    SNAPSHOTS.clear()
    stages = XtremeDistilStages(str(tmp_path), [{"epochs": 1}] * 3, gradual_unfreezing=True)
    overrides = json.dumps({"trainer": {
        "optimizer": {"type": "adam", "lr": 0.01}, "num_epochs": 12, "cuda_device": -1, "validation_metric": "-loss",
        "callbacks": [
            {"type": "test_snapshot", "when": "end"},
            {"type": "structkd_xtremedistil_stages", "gradual_unfreezing": True, "stages": [
                {"representation_weight": 1.0, "logit_weight": 0.0, "kd_weight": 1.0},
                {"representation_weight": 0.0, "logit_weight": 1.0, "kd_weight": 1.0},
                {"representation_weight": 0.0, "logit_weight": 0.0, "kd_weight": 0.0}]},
            {"type": "test_snapshot", "when": "start_of_next"},
        ]}})
    train_model_from_file(CONFIG, str(tmp_path / "run"), overrides)
    # the archived model is the best epoch of the last stage (epochs 8-11), whatever the earlier stages' dev losses
    with open(tmp_path / "run" / "metrics.json") as handle:
        assert 8 <= json.load(handle)["best_epoch"] <= 11
    best, stage_best = (torch.load(tmp_path / "run" / name) for name in ("best.th", "stage_best.th"))
    assert best.keys() == stage_best.keys() and all(torch.equal(best[k], stage_best[k]) for k in best)
    groups = stages.groups
    checked = 0
    for epoch in range(1, 12):
        _, unfrozen = stages.schedule[epoch]
        start, end = SNAPSHOTS[("start_of_next", epoch - 1)], SNAPSHOTS[("end", epoch)]
        for name, value in end.items():
            group = next((g for g in groups if name.startswith(g)), None)
            if group is not None and group not in groups[:unfrozen]:
                assert torch.equal(value, start[name]), f"epoch {epoch}: frozen {name} changed"
                checked += 1
    assert checked > 0
    # and the unfrozen ones did move somewhere (the student learns)
    assert any(not torch.equal(SNAPSHOTS[("end", 11)][n], SNAPSHOTS[("end", 0)][n]) for n in SNAPSHOTS[("end", 0)])


def test_schedule_and_recover_position():
    stages = XtremeDistilStages("x", [{"epochs": 2}, {"epochs": 3}])
    assert stages.schedule == [(0, 4), (0, 4), (1, 4), (1, 4), (1, 4)]
    gradual = XtremeDistilStages("x", [{"epochs": 2}, {"epochs": 3}], gradual_unfreezing=True, epochs_per_group=2)
    assert gradual.total_epochs() == 16 and gradual.schedule[9] == (1, 1)

    class FakeTrainer:
        _start_after_epochs_completed = 9  # as restored by --recover
        _epochs_completed = 0

        def __init__(self):
            self.model = Student(kd_weight=0.3)
            self.model.tag_projection = torch.nn.Linear(2, 2)
            self.model.encoder = torch.nn.Linear(2, 2)
            self.model.other = torch.nn.Linear(2, 2)

    trainer = FakeTrainer()
    gradual.on_start(trainer)
    assert trainer.model.tag_projection.weight.requires_grad
    assert not trainer.model.encoder.weight.requires_grad  # stage 2, first group only
    assert trainer.model.other.weight.requires_grad  # in no group: always trains


def test_model_selection_is_per_stage(tmp_path):
    """An earlier stage's lower dev loss never wins: each stage restores its own best, and the trainer's
    tracking restarts at each stage (the defect of comparing dev losses of different objectives)."""
    from allennlp.training.metric_tracker import MetricTracker

    stages = XtremeDistilStages(str(tmp_path), [{"epochs": 3}, {"epochs": 2}])

    class FakeTrainer:
        def __init__(self):
            self.model = Student()
            self.model.weight = torch.nn.Parameter(torch.zeros(1, 1))
            self._metric_tracker = MetricTracker("-loss")

    trainer = FakeTrainer()
    # dev losses: stage 1 (a different objective) is tiny, its best at epoch 1; stage 2 larger, best at epoch 4
    losses = [0.5, 0.1, 0.3, 9.0, 7.0]
    weights_at_end = {}
    for epoch, loss in enumerate(losses):
        trainer.model.weight.data.fill_(float(epoch))  # "training" leaves the epoch's number in the weight
        trainer._metric_tracker.add_metrics({"loss": loss})
        stages.on_epoch(trainer, {"validation_loss": loss}, epoch)
        weights_at_end[epoch] = trainer.model.weight.item()
    # stage 2 starts from stage 1's best epoch (1), not from its last (2)
    assert weights_at_end[2] == 1.0
    # the trainer's tracker forgot stage 1: its best is stage 2's best epoch, counted from the run's start
    assert trainer._metric_tracker.best_epoch == 4
    assert trainer._metric_tracker.is_best_so_far()
    assert torch.load(tmp_path / "stage_best.th")["weight"].item() == 4.0
    # and the stage's best survives --recover
    recovered = XtremeDistilStages(str(tmp_path), [{"epochs": 3}, {"epochs": 2}])
    recovered.load_state_dict(stages.state_dict())
    assert recovered.stage_best == -7.0 and recovered.stage_best_epoch == 4


def test_validation_metric_needs_a_sign(tmp_path):
    with pytest.raises(Exception, match="must start with"):
        XtremeDistilStages(str(tmp_path), [{"epochs": 1}], validation_metric="loss")


def test_killed_run_recovers_in_the_right_stage(env, tmp_path):
    from tests.models.test_kd_training import CrashOnce  # noqa: F401  (registers test_crash_once)

    flag = tmp_path / "crash"
    flag.write_text("x")
    serialization = str(tmp_path / "run")
    overrides = json.dumps({"trainer": {
        "optimizer": {"type": "adam", "lr": 0.01}, "num_epochs": 4, "cuda_device": -1, "validation_metric": "-loss",
        "callbacks": [
            {"type": "structkd_xtremedistil_stages", "stages": [
                {"epochs": 2, "representation_weight": 1.0, "logit_weight": 0.0, "kd_weight": 1.0},
                {"epochs": 2, "representation_weight": 0.0, "logit_weight": 1.0, "kd_weight": 0.25}]},
            {"type": "test_crash_once", "after_epoch": 2, "flag": str(flag)},
        ]}})
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_model_from_file(CONFIG, serialization, overrides)
    log = os.path.join(serialization, "out.log")  # allennlp's log of the run, appended to by --recover
    before = os.path.getsize(log)
    model = train_model_from_file(CONFIG, serialization, overrides, recover=True)
    with open(log) as handle:
        recovered_log = handle.read()[before:]
    # the last checkpoint was epoch 1's: the recovered run starts epoch 2 in stage 2, with stage 2's weights
    assert "xtremedistil: epoch 2 in stage 2" in recovered_log
    assert "in stage 1" not in recovered_log
    assert model.kd_weight == pytest.approx(0.25)
    assert model.kd_loss.representation_weight == 0.0 and model.kd_loss.logit_weight == 1.0
    with open(os.path.join(serialization, "metrics.json")) as handle:
        assert json.load(handle)["best_epoch"] in (2, 3)

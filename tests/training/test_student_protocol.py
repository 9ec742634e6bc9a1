"""The trainer and its callbacks find students through the KDStudent protocol, and refuse other models by name."""
import pytest
import torch
from allennlp.common.checks import ConfigurationError

import allennlp_structkd  # noqa: F401
from allennlp_structkd.kd.losses import KDLoss, StructuralKD
from allennlp_structkd.kd.protocol import KDStudent, KDTeacher
from allennlp_structkd.kd.xtremedistil_loss import XtremeDistilKD
from allennlp_structkd.models import BiaffineParser, CrfTagger, MaxEntTagger, SecondOrderParser, SequenceLabelingParser, SpanNer
from allennlp_structkd.training.callbacks import TeacherAnnealing, XtremeDistilStages
from tests.training.stand_ins import StandInStudent


def toy_student(kd_loss: KDLoss) -> StandInStudent:
    """A student defined outside the library, with a module for the stages to freeze or train."""
    student = StandInStudent(kd_loss)
    student.encoder = torch.nn.Linear(2, 2)
    return student


class NotAStudent(torch.nn.Module):
    kd_weight = 1.0  # an attribute of that name does not make a student


class Trainer:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model


def test_the_students_and_the_teacher_only_models():
    for student in (CrfTagger, MaxEntTagger, SequenceLabelingParser):
        assert issubclass(student, KDStudent) and issubclass(student, KDTeacher), student
    for teacher in (BiaffineParser, SecondOrderParser, SpanNer):
        assert issubclass(teacher, KDTeacher) and not issubclass(teacher, KDStudent), teacher


def test_a_student_must_say_what_its_kd_weight_is():
    class Incomplete(torch.nn.Module, KDStudent):
        kd_loss = None

    with pytest.raises(TypeError, match="kd_weight"):
        Incomplete()


def test_teacher_annealing_sets_a_students_weight_and_names_a_model_that_is_not_one():
    annealing = TeacherAnnealing("unused", initial_weight=1.0, anneal_rate=0.25, final_weight=0.5)
    student = toy_student(StructuralKD())
    annealing.on_start(Trainer(student))
    assert student.kd_weight == 1.0
    for epoch, expected in enumerate([0.75, 0.5, 0.5]):
        annealing.on_epoch(Trainer(student), {}, epoch)
        assert student.kd_weight == expected
    with pytest.raises(ConfigurationError, match="needs a student model.*not NotAStudent"):
        annealing.on_start(Trainer(NotAStudent()))


def test_xtremedistil_stages_set_the_students_weights_through_the_protocol():
    loss = XtremeDistilKD(student_hidden_dim=2, teacher_hidden_dim=3, logit_weight=1.0, representation_weight=0.0)
    student = toy_student(loss)
    stages = XtremeDistilStages("unused", [{"epochs": 1, "representation_weight": 1.0, "logit_weight": 0.0, "kd_weight": 1.0},
                                           {"epochs": 1, "representation_weight": 0.0, "logit_weight": 1.0, "kd_weight": 0.3}])
    stages.apply(student, 0)
    assert (loss.representation_weight, loss.logit_weight, student.kd_weight) == (1.0, 0.0, 1.0)
    stages.apply(student, 1)
    assert (loss.representation_weight, loss.logit_weight, student.kd_weight) == (0.0, 1.0, 0.3)
    # a stage's loss weights belong to the xtremedistil loss: another loss is named, not given a new attribute
    with pytest.raises(ConfigurationError, match="weight of the xtremedistil loss.*is StructuralKD"):
        stages.apply(toy_student(StructuralKD()), 0)
    with pytest.raises(ConfigurationError, match="needs a student model.*not NotAStudent"):
        stages.apply(NotAStudent(), 0)

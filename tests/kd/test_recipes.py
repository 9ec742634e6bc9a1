"""Recipes: each objective says what it asks of a teacher, each teacher what it gives; the check names both."""
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.models import Model

import allennlp_structkd  # noqa: F401
from allennlp_structkd.kd.losses import KDLoss, MixtureKD
from allennlp_structkd.kd.protocol import KDTeacher
from allennlp_structkd.kd.targets import ONE_BEST, POTENTIALS, RECIPES, UNARY_MARGINALS
from allennlp_structkd.kd.teacher_distributions import TeacherDistribution


def loss(spec):
    return KDLoss.from_params(Params(dict(spec)))


def test_every_objective_and_every_teacher_names_known_recipes():
    for name in KDLoss.list_available():
        cls = KDLoss.resolve_class_name(name)[0]
        # a mixture's recipe comes from its parts (a property of the instance)
        assert issubclass(cls, MixtureKD) or cls.recipe in RECIPES, name
    teachers = [Model.resolve_class_name(name)[0] for name in Model.list_available()]
    teachers = [cls for cls in teachers if issubclass(cls, KDTeacher)]
    assert len(teachers) >= 6
    for cls in teachers:
        gives = cls.teacher_structure.gives()  # what a teacher teaches follows from the distribution it returns
        assert gives and gives <= set(RECIPES), cls


def test_the_kinds_of_targets_follow_from_each_structures_methods():
    from allennlp_structkd.kd.teacher_distributions import ParseTeacher, SequenceTeacher, SpanTeacher

    assert SequenceTeacher.gives() == set(RECIPES)
    assert ParseTeacher.gives() == {UNARY_MARGINALS, ONE_BEST}
    assert SpanTeacher.gives() == {UNARY_MARGINALS}


def test_no_model_names_an_objective_or_its_recipe():
    """A teacher model only returns its distribution: what each objective takes from it is the objective's business."""
    import pathlib

    import allennlp_structkd.models

    for path in pathlib.Path(allennlp_structkd.models.__file__).parent.glob("*.py"):
        text = path.read_text()
        for word in ("recipe", "ONE_BEST", "UNARY_MARGINALS", "POTENTIALS", "check_teaches"):
            assert word not in text, (path.name, word)


def test_the_papers_objectives_ask_for_what_their_teachers_give():
    assert loss({"type": "structural"}).recipe == UNARY_MARGINALS  # any structured teacher (Cases 1-4)
    assert loss({"type": "posterior"}).recipe == UNARY_MARGINALS
    assert loss({"type": "top1"}).recipe == ONE_BEST
    for kind in ("token", "emission", "top_k", "top_wk"):
        assert loss({"type": kind}).recipe == POTENTIALS, kind
    # logits and hidden states: a tagger teacher's (a transformer's) own
    assert loss({"type": "xtremedistil", "student_hidden_dim": 2, "teacher_hidden_dim": 3}).recipe == POTENTIALS


def test_a_mixture_asks_for_the_recipe_its_parts_share_else_for_potentials():
    shared = loss({"type": "mixture", "losses": [{"type": "structural"}, {"type": "posterior"}]})
    assert shared.recipe == UNARY_MARGINALS
    mixed = loss({"type": "mixture", "losses": [{"type": "posterior"}, {"type": "top_k", "k": 2}]})
    assert mixed.recipe == POTENTIALS


class BestOnly(TeacherDistribution):
    """A toy structure: each word's best label, nothing else (a new structure is one class like this)."""

    def __init__(self, best):
        self.best, self.mask = best, best >= 0

    def one_best_targets(self, objective):
        return {"teacher_kbest_tags": self.best.unsqueeze(1), "teacher_kbest_weights": torch.ones(self.best.size(0), 1)}


class ToyTeacher(KDTeacher):
    """A teacher defined here: it returns its distribution, and what it teaches follows."""

    teacher_structure = BestOnly

    def teacher_distribution(self, tokens, **tensors):
        return BestOnly(tokens["tokens"]["tokens"] % 2)


def test_a_teacher_teaches_the_objectives_of_its_recipes_and_names_the_others():
    ToyTeacher().check_teaches(loss({"type": "top1"}))
    targets, pseudo, mask = ToyTeacher().teacher_outputs(loss({"type": "top1"}), {"tokens": {"tokens": torch.tensor([[3, 4]])}})
    assert targets["teacher_kbest_tags"].tolist() == [[[1, 0]]] and pseudo is None and mask.all()
    with pytest.raises(ConfigurationError, match=r"a ToyTeacher teacher gives one_best targets, and the objective "
                                                 r"Structural.* asks for unary_marginals: use an objective it can teach \(top1\)"):
        ToyTeacher().check_teaches(loss({"type": "structural"}))

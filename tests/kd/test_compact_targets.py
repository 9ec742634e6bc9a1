"""Structural KD's targets are cached as the teacher's constrained chain scores (n x L a sentence, transitions once
per teacher) instead of its pair marginals (n x L x L), and expanded back, batched, when read: the targets the
student trains with are those of the teacher, exactly."""
import numpy as np
import pytest
import torch
from allennlp.common import Params

from allennlp_structkd.kd.cache import encode_entry
from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.targets import expand_entries, split_shared, trim_to_length
from allennlp_structkd.kd.teacher_distributions import SequenceTeacher
from allennlp_structkd.structures.potentials import ChainPotentials, Constraints, TokenPotentials


def chain(batch=3, length=5, labels=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, length, labels, generator=generator) * 3
    transitions = torch.randn(labels, labels, generator=generator)
    start, end = torch.randn(labels, generator=generator), torch.randn(labels, generator=generator)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[1, 3:] = False
    mask[2, 1:] = False
    allowed = torch.ones(labels, labels, dtype=torch.bool)
    allowed[0, 1] = allowed[2, 3] = False
    constraints = Constraints(allowed, torch.tensor([True, False, True, True]), torch.ones(labels, dtype=torch.bool))
    return ChainPotentials(emissions, mask, transitions, start, end, constraints)


def entries_of(objective, teacher):
    """Per-sentence entries of a batch's storage targets, as a teacher hands them to the reader."""
    stored = objective.storage_targets(SequenceTeacher(teacher))
    lengths = teacher.mask.long().sum(1).tolist()
    return [{name: trim_to_length(name, value[b], n).numpy() for name, value in stored.items()} for b, n in enumerate(lengths)]


@pytest.mark.parametrize("spec", [{"type": "structural"}, {"type": "structural", "temperature": 2.0},
                                  {"type": "structural", "temperature": 0.5, "temperature_mode": "global"}])
def test_expanded_scores_are_the_teachers_targets(spec):
    objective = KDLoss.from_params(Params(spec))
    teacher = chain()
    direct = objective.teacher_targets(SequenceTeacher(teacher))
    per_sentence, shared = split_shared(entries_of(objective, teacher))
    assert set(shared) == {"teacher_transitions", "teacher_start", "teacher_end"}
    assert all(set(entry) == {"teacher_emissions"} for entry in per_sentence)
    expanded = expand_entries(objective, [dict(entry, **shared) for entry in per_sentence])
    for b, n in enumerate(teacher.mask.long().sum(1).tolist()):
        for name in ("teacher_unary", "teacher_pairwise"):
            expected = trim_to_length(name, direct[name][b], n).numpy()
            np.testing.assert_allclose(expanded[b][name], expected, rtol=1e-6, atol=1e-7)
    # forbidden transitions keep probability 0 through the round trip (they are -inf in the stored scores)
    assert all(float(np.abs(entry["teacher_pairwise"][1:, 0, 1]).max(initial=0.0)) == 0.0 for entry in expanded)


def test_batching_does_not_change_the_expanded_targets():
    objective = KDLoss.from_params(Params({"type": "structural"}))
    per_sentence, shared = split_shared(entries_of(objective, chain(batch=3)))
    together = expand_entries(objective, [dict(entry, **shared) for entry in per_sentence])
    alone = [expand_entries(objective, [dict(entry, **shared)])[0] for entry in per_sentence]
    for a, b in zip(together, alone):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7)


def test_a_per_token_teacher_and_targets_stored_whole_pass_through():
    objective = KDLoss.from_params(Params({"type": "structural"}))
    token = TokenPotentials(torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool))
    expanded = expand_entries(objective, entries_of(objective, token))
    np.testing.assert_allclose(expanded[0]["teacher_unary"], token.unary_marginals()[0].numpy(), rtol=1e-6)
    older = [{"teacher_unary": np.ones((2, 4), np.float32) / 4, "pseudo_tags": np.zeros(2, np.int64)}]
    assert expand_entries(objective, older) is older  # an older cache's targets, as they were stored


def test_pseudo_labels_survive_the_expansion():
    objective = KDLoss.from_params(Params({"type": "structural"}))
    per_sentence, shared = split_shared(entries_of(objective, chain()))
    with_tags = [dict(entry, pseudo_tags=np.arange(len(entry["teacher_emissions"]))) for entry in per_sentence]
    expanded = expand_entries(objective, [dict(entry, **shared) for entry in with_tags])
    assert [list(entry["pseudo_tags"]) for entry in expanded] == [list(range(n)) for n in (5, 3, 1)]


def test_the_stored_form_is_a_fraction_of_the_pair_marginals():
    """17 labels (BIOES over 4 types), a 25-word sentence: the entry the cache keeps, against the one it kept."""
    objective = KDLoss.from_params(Params({"type": "structural"}))
    labels = 17
    teacher = ChainPotentials(torch.randn(1, 25, labels), torch.ones(1, 25, dtype=torch.bool), torch.randn(labels, labels))
    [stored] = split_shared(entries_of(objective, teacher))[0]
    [full] = expand_entries(objective, [dict(stored, **split_shared(entries_of(objective, teacher))[1])])
    assert len(encode_entry(stored)) * 4 <= len(encode_entry(full))

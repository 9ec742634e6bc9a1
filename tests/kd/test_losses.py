"""Every KD objective against its definition, computed by enumerating all label sequences."""
import itertools
import math

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from hypothesis import given, settings, strategies as st

from allennlp_structkd.kd import KDLoss, Potentials
from allennlp_structkd.kd.losses import check_label_sets
from tests import brute_force

DT = torch.float64


def crf(seed, batch, n, num_labels, scale=1.5, lengths=None):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, n, num_labels, generator=g, dtype=DT) * scale
    transitions = torch.randn(num_labels, num_labels, generator=g, dtype=DT) * scale
    start = torch.randn(num_labels, generator=g, dtype=DT) * scale
    end = torch.randn(num_labels, generator=g, dtype=DT) * scale
    if lengths is None:
        lengths = torch.randint(1, n + 1, (batch,), generator=g)
        lengths[0] = n
    mask = torch.arange(n).unsqueeze(0) < torch.as_tensor(lengths).unsqueeze(1)
    return Potentials(emissions, mask, transitions, start, end)


def maxent(seed, batch, n, num_labels, mask):
    g = torch.Generator().manual_seed(seed)
    return Potentials(torch.randn(batch, n, num_labels, generator=g, dtype=DT) * 1.5, mask)


def log_prob_table(p: Potentials, b: int, temperature: float = 1.0):
    """log P(y) for every label sequence y of sentence b (enumeration)."""
    length = int(p.mask[b].sum())
    num_labels = p.emissions.size(2)
    if p.is_crf:
        scores = brute_force.chain_sequences(p.emissions[b] / temperature, p.transitions / temperature, length,
                                             p.start / temperature, p.end / temperature)
    else:
        log_probs = (p.emissions[b] / temperature).log_softmax(-1)
        scores = {y: sum(log_probs[i, a].item() for i, a in enumerate(y))
                  for y in itertools.product(range(num_labels), repeat=length)}
    log_z = brute_force.logsumexp(list(scores.values()))
    return {y: s - log_z for y, s in scores.items()}


def cross_entropy(teacher_table, student_table):
    return -sum(math.exp(lp) * student_table[y] for y, lp in teacher_table.items())


def build(spec):
    return KDLoss.from_params(Params(dict(spec)))


cases = st.tuples(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3))


@settings(max_examples=25, deadline=None)
@given(cases, st.sampled_from(["crf", "maxent"]), st.sampled_from(["crf", "maxent"]))
def test_structural_kd_is_sequence_cross_entropy(args, teacher_kind, student_kind):
    """Cases 1a (CRF→CRF), 2a (CRF→MaxEnt), 3 (MaxEnt→CRF), and MaxEnt→MaxEnt."""
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels)
    if student_kind == "maxent":
        student = maxent(seed + 1, batch, n, num_labels, student.mask)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1))
    if teacher_kind == "maxent":
        teacher = maxent(seed + 3, batch, n, num_labels, student.mask)
    loss = build({"type": "structural"})
    value = loss(student, loss.teacher_targets(teacher))
    for b in range(batch):
        expected = cross_entropy(log_prob_table(teacher, b), log_prob_table(student, b))
        assert value[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(cases, st.sampled_from([0.5, 2.0, 3.0]))
def test_global_temperature_tempers_the_structure_score(args, temperature):
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1))
    loss = build({"type": "structural", "temperature": temperature, "temperature_mode": "global"})
    value = loss(student, loss.teacher_targets(teacher))
    for b in range(batch):
        expected = cross_entropy(log_prob_table(teacher, b, temperature), log_prob_table(student, b))
        assert value[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_local_temperature_tempers_each_marginal_like_softmax_alpha_beta():
    teacher = crf(5, 2, 4, 3)
    temperature = 2.5
    targets = build({"type": "structural", "temperature": temperature}).teacher_targets(teacher)
    for b in range(2):
        length = int(teacher.mask[b].sum())
        _, unary, pair = brute_force.chain_marginals(teacher.emissions[b], teacher.transitions, length, teacher.start, teacher.end)
        expected_unary = (unary[:length].log() / temperature).softmax(-1)
        torch.testing.assert_close(targets["teacher_unary"][b, :length], expected_unary)
        for i in range(1, length):
            expected_pair = (pair[i].log() / temperature).flatten().softmax(-1).view_as(pair[i])
            torch.testing.assert_close(targets["teacher_pairwise"][b, i], expected_pair)
    # at T = 1 local and global agree
    one_local = build({"type": "structural"}).teacher_targets(teacher)
    one_global = build({"type": "structural", "temperature_mode": "global"}).teacher_targets(teacher)
    torch.testing.assert_close(one_local["teacher_unary"], one_global["teacher_unary"])


@settings(max_examples=20, deadline=None)
@given(cases, st.sampled_from(["crf", "maxent"]))
def test_posterior_kd_matches_enumerated_marginals(args, student_kind):
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels)
    if student_kind == "maxent":
        student = maxent(seed + 1, batch, n, num_labels, student.mask)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1))
    loss = build({"type": "posterior"})
    value = loss(student, loss.teacher_targets(teacher))
    for b in range(batch):
        length = int(student.mask[b].sum())
        t_table, s_table = log_prob_table(teacher, b), log_prob_table(student, b)
        t_marg = torch.zeros(length, num_labels, dtype=DT)
        s_marg = torch.zeros(length, num_labels, dtype=DT)
        for y in t_table:
            for i, a in enumerate(y):
                t_marg[i, a] += math.exp(t_table[y])
                s_marg[i, a] += math.exp(s_table[y])
        expected = -(t_marg * s_marg.log()).sum().item()
        assert value[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("kind", ["token", "emission"])
def test_token_and_emission_kd(kind):
    student = crf(1, 3, 4, 3)
    teacher = crf(2, 3, 4, 3, lengths=student.mask.sum(1))
    loss = build({"type": kind, "temperature": 2.0})
    value = loss(student, loss.teacher_targets(teacher))
    for b in range(3):
        length = int(student.mask[b].sum())
        q_t = (teacher.emissions[b, :length] / 2.0).softmax(-1)
        log_q_s = student.emissions[b, :length].log_softmax(-1)
        assert value[b].item() == pytest.approx(-(q_t * log_q_s).sum().item(), rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(cases, st.integers(1, 6), st.sampled_from(["top_k", "top_wk", "top1"]), st.sampled_from(["crf", "maxent"]))
def test_top_k_objectives_match_enumeration(args, k, kind, teacher_kind):
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1))
    if teacher_kind == "maxent":
        teacher = maxent(seed + 3, batch, n, num_labels, student.mask)
    spec = {"type": kind} if kind == "top1" else {"type": kind, "k": k}
    k = 1 if kind == "top1" else k
    loss = build(spec)
    value = loss(student, loss.teacher_targets(teacher))
    for b in range(batch):
        t_table, s_table = log_prob_table(teacher, b), log_prob_table(student, b)
        best = sorted(t_table, key=t_table.get, reverse=True)[:k]
        if kind == "top_wk":
            expected = -sum(math.exp(t_table[y]) * s_table[y] for y in best)
        else:
            expected = -sum(s_table[y] for y in best) / len(best)
        assert value[b].item() == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_posterior_plus_top_wk_is_the_average():
    student = crf(3, 2, 4, 3)
    teacher = crf(4, 2, 4, 3, lengths=student.mask.sum(1))
    mixed = build({"type": "posterior+top_wk", "k": 3})
    posterior, top_wk = build({"type": "posterior"}), build({"type": "top_wk", "k": 3})
    expected = 0.5 * posterior(student, posterior.teacher_targets(teacher)) + 0.5 * top_wk(student, top_wk.teacher_targets(teacher))
    torch.testing.assert_close(mixed(student, mixed.teacher_targets(teacher)), expected)


@pytest.mark.parametrize("kind", ["structural", "posterior", "emission", "top_wk"])
def test_gradients_reach_only_the_student(kind):
    student = crf(6, 2, 5, 4)
    for t in (student.emissions, student.transitions, student.start, student.end):
        t.requires_grad_(True)
    teacher = crf(7, 2, 5, 4, lengths=student.mask.sum(1))
    for t in (teacher.emissions, teacher.transitions, teacher.start, teacher.end):
        t.requires_grad_(True)
    loss = build({"type": kind})
    targets = loss.teacher_targets(teacher)
    assert all(not v.requires_grad for v in targets.values())
    loss(student, targets).sum().backward()
    assert student.emissions.grad is not None and student.emissions.grad.abs().sum() > 0
    assert teacher.emissions.grad is None and teacher.transitions.grad is None


def test_structural_kd_is_minimised_by_the_teacher_itself():
    """Gibbs' inequality: the cross-entropy is smallest (= the teacher's entropy) when the student is the teacher."""
    teacher = crf(8, 2, 4, 3)
    loss = build({"type": "structural"})
    targets = loss.teacher_targets(teacher)
    at_teacher = loss(teacher, targets)
    other = loss(crf(9, 2, 4, 3, lengths=teacher.mask.sum(1)), targets)
    assert (at_teacher < other).all()


def _through_field(targets, lengths, teacher_labels, student_vocab, all_labels):
    """Targets of a batch, per sentence through TeacherTargetsField (index, pad, batch), as the model sees them."""
    from allennlp.data import Vocabulary

    from allennlp_structkd.dataset_readers.teacher_annotating import TeacherTargetsField, trim_to_length

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(student_vocab, "labels")
    fields = []
    for b, n in enumerate(lengths):
        per_sentence = {}
        for name, value in targets.items():
            per_sentence[name] = trim_to_length(name, value[b], n).numpy()
        field = TeacherTargetsField(per_sentence, teacher_labels, all_labels)
        field.index(vocab)
        fields.append(field)
    padding = {"num_tokens": max(lengths)}
    return fields[0].batch_tensors([f.as_tensor(padding) for f in fields])


def test_label_mapping_by_string():
    """A student whose labels are a permutation (and superset) of the teacher's gets the same loss."""
    teacher = crf(10, 2, 4, 3, lengths=[4, 2])
    student = crf(11, 2, 4, 3, lengths=[4, 2])
    loss = build({"type": "structural"})
    targets = loss.teacher_targets(teacher)
    reference = loss(student, targets)
    # the student orders labels [c, a, b] and has a label d this teacher lacks (another teacher has it)
    mapped = _through_field(targets, [4, 2], ["a", "b", "c"], ["c", "a", "b", "d"], ["a", "b", "c", "d"])
    assert mapped["teacher_unary"][:, :, 3].abs().sum() == 0  # probability 0 for the missing label
    inverse = torch.tensor([2, 0, 1])  # teacher label at student index 0, 1, 2
    perm = lambda t: torch.cat([t.index_select(-1, inverse), torch.full_like(t[..., :1], -1e4)], -1)  # noqa: E731
    permuted = Potentials(perm(student.emissions), student.mask,
                          torch.nn.functional.pad(student.transitions[inverse][:, inverse], (0, 1, 0, 1), value=-1e4),
                          perm(student.start), perm(student.end))
    torch.testing.assert_close(loss(permuted, mapped), reference, atol=1e-6, rtol=1e-6)
    tags = build({"type": "top_k", "k": 2}).teacher_targets(teacher)
    mapped_tags = _through_field(tags, [4, 2], ["a", "b", "c"], ["c", "a", "b", "d"], ["a", "b", "c", "d"])
    order = torch.tensor([1, 2, 0])  # student index of teacher labels a, b, c
    expected = order[tags["teacher_kbest_tags"]]
    expected[1, :, 2:] = 1  # padding past the second sentence: label id 0 mapped (a -> 1)
    torch.testing.assert_close(mapped_tags["teacher_kbest_tags"][0], expected[0])
    torch.testing.assert_close(mapped_tags["teacher_kbest_tags"][1, :, :2], expected[1, :, :2])


def test_a_student_label_no_teacher_has_is_an_error_at_indexing():
    teacher = crf(10, 1, 3, 2, lengths=[3])
    targets = build({"type": "structural"}).teacher_targets(teacher)
    with pytest.raises(ConfigurationError, match=r"only the student has: \['z'\]"):
        _through_field(targets, [3], ["a", "b"], ["a", "b", "z"], ["a", "b"])


def test_label_set_errors_name_the_labels():
    with pytest.raises(ConfigurationError, match=r"only the student has: \['B-X'\].*only the teachers have: \['S-Y'\]"):
        check_label_sets(["O", "B-X"], ["O", "S-Y"])


def test_bad_settings():
    with pytest.raises(ConfigurationError, match="temperature"):
        build({"type": "structural", "temperature": 0})
    with pytest.raises(ConfigurationError, match="global"):
        build({"type": "top_k", "temperature_mode": "local"})


@pytest.mark.parametrize("representation_loss", ["mse", "kl"])
def test_xtremedistil_losses_match_their_definitions(representation_loss):
    g = torch.Generator().manual_seed(3)
    teacher = crf(12, 2, 4, 3)
    teacher.hidden = torch.randn(2, 4, 6, generator=g, dtype=DT)
    student = Potentials(torch.randn(2, 4, 3, generator=g, dtype=DT), teacher.mask)
    student.hidden = torch.randn(2, 4, 5, generator=g, dtype=DT)
    loss = build({"type": "xtremedistil", "student_hidden_dim": 5, "teacher_hidden_dim": 6, "logit_weight": 0.7,
                  "representation_weight": 0.3, "representation_loss": representation_loss}).double()
    value = loss(student, loss.teacher_targets(teacher))
    for b in range(2):
        n = int(teacher.mask[b].sum())
        logit = ((student.emissions[b, :n] - teacher.emissions[b, :n]) ** 2).sum() / 3
        projected = torch.nn.functional.gelu(student.hidden[b, :n] @ loss.projection[0].weight.t() + loss.projection[0].bias)
        if representation_loss == "mse":
            rep = ((projected - teacher.hidden[b, :n]) ** 2).sum() / 6
        else:
            rep = torch.nn.functional.kl_div(projected.log_softmax(-1), teacher.hidden[b, :n].softmax(-1), reduction="sum")
        assert value[b].item() == pytest.approx((0.7 * logit + 0.3 * rep).item(), rel=1e-9)
    value.sum().backward()
    assert loss.projection[0].weight.grad is not None  # the shared projection trains

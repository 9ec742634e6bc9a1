"""Every KD objective against its definition, computed by enumerating all label sequences."""
import itertools
import math

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from hypothesis import given, settings
from hypothesis import strategies as st

from allennlp_structkd.kd import Constraints, KDLoss, Potentials
from allennlp_structkd.kd.losses import check_label_sets
from allennlp_structkd.kd.teacher_distributions import SequenceTeacher
from allennlp_structkd.structures.potentials import ChainPotentials
from tests import brute_force

DT = torch.float64


FORBIDDEN = -1e4  # what CrfTagger adds to a forbidden transition's score


def crf(seed, batch, n, num_labels, scale=1.5, lengths=None, constrained=False):
    """A random CRF; ``constrained``: random hard constraints (label 0 always allowed), as CrfTagger gives."""
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, n, num_labels, generator=g, dtype=DT) * scale
    transitions = torch.randn(num_labels, num_labels, generator=g, dtype=DT) * scale
    start = torch.randn(num_labels, generator=g, dtype=DT) * scale
    end = torch.randn(num_labels, generator=g, dtype=DT) * scale
    if lengths is None:
        lengths = torch.randint(1, n + 1, (batch,), generator=g)
        lengths[0] = n
    mask = torch.arange(n).unsqueeze(0) < torch.as_tensor(lengths).unsqueeze(1)
    constraints = None
    if constrained:
        allowed = [torch.rand(shape, generator=g) < 0.6 for shape in ((num_labels, num_labels), (num_labels,), (num_labels,))]
        allowed[0][0, 0] = allowed[1][0] = allowed[2][0] = True
        constraints = Constraints(*allowed)
        penalty = lambda t, a: t + torch.where(a, 0.0, FORBIDDEN).to(DT)  # noqa: E731
        transitions, start, end = penalty(transitions, allowed[0]), penalty(start, allowed[1]), penalty(end, allowed[2])
    return Potentials(emissions, mask, transitions, start, end, constraints)


def is_allowed(p: Potentials, y) -> bool:
    if p.constraints is None or not y:
        return True
    c = p.constraints
    return bool(c.start[y[0]]) and bool(c.end[y[-1]]) and all(bool(c.transitions[a, b]) for a, b in zip(y, y[1:]))


def maxent(seed, batch, n, num_labels, mask):
    g = torch.Generator().manual_seed(seed)
    return Potentials(torch.randn(batch, n, num_labels, generator=g, dtype=DT) * 1.5, mask)


def log_prob_table(p: Potentials, b: int, temperature: float = 1.0, allowed_only: bool = False):
    """log P(y) for every label sequence y of sentence b (enumeration); ``allowed_only``: over the
    sequences the constraints allow (how a teacher's distribution is defined)."""
    length = int(p.mask[b].sum())
    num_labels = p.emissions.size(2)
    if isinstance(p, ChainPotentials):
        scores = brute_force.chain_sequences(p.emissions[b] / temperature, p.transitions / temperature, length,
                                             p.start / temperature, p.end / temperature)
    else:
        log_probs = (p.emissions[b] / temperature).log_softmax(-1)
        scores = {y: sum(log_probs[i, a].item() for i, a in enumerate(y))
                  for y in itertools.product(range(num_labels), repeat=length)}
    if allowed_only:
        scores = {y: s for y, s in scores.items() if is_allowed(p, y)}
    log_z = brute_force.logsumexp(list(scores.values()))
    return {y: s - log_z for y, s in scores.items()}


def teacher_table(p: Potentials, b: int, temperature: float, mode: str):
    """
    The tempered teacher distribution over sentence b's sequences, by enumeration. global:
    ``∝ exp(Score/T)`` over allowed sequences. local: the teacher as a Markov chain,
    ``P(y_0) Π P(y_i | y_{i-1})`` from its enumerated marginals, each factor softmax(log p / T).
    """
    if mode == "global":
        return log_prob_table(p, b, temperature, allowed_only=True)
    table = log_prob_table(p, b, 1.0, allowed_only=True)
    length = int(p.mask[b].sum())
    num_labels = p.emissions.size(2)
    pair = torch.zeros(max(length, 1), num_labels, num_labels, dtype=DT)
    unary = torch.zeros(max(length, 1), num_labels, dtype=DT)
    for y, lp in table.items():
        for i, a in enumerate(y):
            unary[i, a] += math.exp(lp)
            if i:
                pair[i, y[i - 1], a] += math.exp(lp)

    def temper(probs):
        return torch.where(probs > 0, probs.log() / temperature, torch.tensor(float("-inf"), dtype=DT)).softmax(-1)

    result = {}
    for y in itertools.product(range(num_labels), repeat=length):
        q = temper(unary[0])[y[0]].item() if length else 1.0
        for i in range(1, length):
            if q == 0.0:
                break
            q *= temper(pair[i, y[i - 1]] / unary[i - 1, y[i - 1]])[y[i]].item()
        if q > 0:
            result[y] = math.log(q)
    return result


def marginals_of(table, length, num_labels):
    unary = torch.zeros(length, num_labels, dtype=DT)
    for y, lp in table.items():
        for i, a in enumerate(y):
            unary[i, a] += math.exp(lp)
    return unary


def log_marginals_of(table, length, num_labels):
    """log P(y_i = a) by log-sum-exp (a forbidden label's exp(-1e4) would underflow to 0)."""
    terms = [[[] for _ in range(num_labels)] for _ in range(length)]
    for y, lp in table.items():
        for i, a in enumerate(y):
            terms[i][a].append(lp)
    return torch.tensor([[brute_force.logsumexp(t) for t in row] for row in terms], dtype=DT)


def cross_entropy(teacher_table, student_table):
    return -sum(math.exp(lp) * student_table[y] for y, lp in teacher_table.items())


def build(spec):
    return KDLoss.from_params(Params(dict(spec)))


def tiny_crf_tagger(labels, encoding):
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["a"], "tokens")
    vocab.add_tokens_to_namespace(labels, "labels")
    return Model.from_params(vocab=vocab, params=Params({
        "type": "structkd_crf_tagger", "label_encoding": encoding,
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 2}}},
    }))


cases = st.tuples(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3))


temperatures = st.sampled_from([1.0, 0.5, 2.5])
modes = st.sampled_from(["local", "global"])


@settings(max_examples=40, deadline=None)
@given(cases, st.sampled_from(["crf", "maxent"]), st.sampled_from(["crf", "maxent"]), temperatures, modes, st.booleans())
def test_structural_kd_is_sequence_cross_entropy(args, teacher_kind, student_kind, temperature, mode, constrained):
    """Cases 1a (CRF→CRF), 2a (CRF→MaxEnt), 3 (MaxEnt→CRF), MaxEnt→MaxEnt; both temperature modes; constraints."""
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels, constrained=constrained)
    if student_kind == "maxent":
        student = maxent(seed + 1, batch, n, num_labels, student.mask)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1), constrained=constrained)
    if teacher_kind == "maxent":
        teacher = maxent(seed + 3, batch, n, num_labels, student.mask)
    loss = build({"type": "structural", "temperature": temperature, "temperature_mode": mode})
    value = loss(student, loss.teacher_targets(SequenceTeacher(teacher)))
    for b in range(batch):
        expected = cross_entropy(teacher_table(teacher, b, temperature, mode), log_prob_table(student, b))
        assert value[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_local_temperature_gives_consistent_marginals_and_a_bounded_loss():
    """
    Tempering unary and pair marginals separately (the earlier local mode) let the loss fall without
    bound (11.3 → −23.7) along a direction that changes no sequence's score: add f to every
    position's emissions and subtract it from every transition into a label. Marginals of one
    distribution make the loss constant along it, and never negative.
    """
    loss = build({"type": "structural", "temperature": 2.5})
    teacher = crf(5, 2, 4, 3, lengths=[4, 3])
    targets = loss.teacher_targets(SequenceTeacher(teacher))
    unary, pair = targets["teacher_unary"], targets["teacher_pairwise"]
    for b, length in enumerate([4, 3]):
        torch.testing.assert_close(unary[b, :length].sum(-1), torch.ones(length, dtype=DT))
        for i in range(1, length):
            torch.testing.assert_close(pair[b, i].sum(0), unary[b, i])
            torch.testing.assert_close(pair[b, i].sum(1), unary[b, i - 1])
    student = crf(6, 2, 4, 3, lengths=[4, 3])
    direction = torch.tensor([3.0, -5.0, 2.0], dtype=DT)
    values = []
    for c in (0.0, 1.0, 10.0, -10.0):
        emissions = student.emissions.clone()
        emissions[:, 1:] += c * direction
        moved = Potentials(emissions, student.mask, student.transitions - c * direction.view(1, -1), student.start, student.end)
        torch.testing.assert_close(moved.log_partition(), student.log_partition())
        values.append(loss(moved, targets))
    for value in values[1:]:
        torch.testing.assert_close(value, values[0])
    for seed in range(20):
        assert (loss(crf(100 + seed, 2, 4, 3, scale=8.0, lengths=[4, 3]), targets) >= 0).all()


def test_forbidden_sequences_are_never_targets_whatever_k():
    """
    A one-word sentence, one entity type, BIOES: only O and S-X are allowed. With k = 10 the
    k-best used to return B-X and E-X too (each weight 0.25; KD loss 5,001 for a student
    identical to its teacher).
    """
    model = tiny_crf_tagger(["O", "B-X", "I-X", "E-X", "S-X"], "BIOES")
    emissions = torch.randn(1, 1, 5, generator=torch.Generator().manual_seed(0))
    teacher = model.potentials(emissions, torch.ones(1, 1, dtype=torch.bool))
    allowed = {model.labels.index("O"), model.labels.index("S-X")}
    # the teacher's distribution over its two allowed sequences
    ids = sorted(allowed)
    scores = torch.stack([teacher.emissions[0, 0, i] + teacher.start[i] + teacher.end[i] for i in ids]).detach()
    log_p = scores.log_softmax(0)
    expected = {"top_k": -float(log_p.mean()), "top_wk": -float((log_p.exp() * log_p).sum())}
    for kind in ("top_k", "top_wk"):
        loss = build({"type": kind, "k": 10})
        targets = loss.teacher_targets(SequenceTeacher(teacher))
        weights, tags = targets["teacher_kbest_weights"][0], targets["teacher_kbest_tags"][0, :, 0]
        assert int((weights > 0).sum()) == 2 and {int(t) for t in tags[weights > 0]} == allowed
        assert float(weights.sum()) == pytest.approx(1.0)
        # a student identical to its teacher (penalised, not forbidden, sequences: exp(-1e4) = 0)
        assert float(loss(teacher, targets)[0].detach()) == pytest.approx(expected[kind], rel=1e-5)
    for kind in ("structural", "posterior"):
        loss = build({"type": kind})
        unary = loss.teacher_targets(SequenceTeacher(teacher))["teacher_unary"][0, 0]
        assert {i for i in range(5) if unary[i] > 0} == allowed


@settings(max_examples=30, deadline=None)
@given(cases, st.integers(1, 12), st.sampled_from(["top_k", "top_wk", "top1"]), st.sampled_from(["crf", "maxent"]),
       st.sampled_from([1.0, 0.5, 2.5]), st.booleans())
def test_top_k_objectives_match_enumeration(args, k, kind, teacher_kind, temperature, constrained):
    """Eq. 8 (Top-K) and Eq. 9 (Top-WK, renormalised over the K best), k up to beyond the allowed sequences."""
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels, constrained=constrained)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1), constrained=constrained)
    if teacher_kind == "maxent":
        teacher = maxent(seed + 3, batch, n, num_labels, student.mask)
    k = 1 if kind == "top1" else k
    spec = {"type": kind, "temperature": temperature} if kind == "top1" else {"type": kind, "k": k, "temperature": temperature}
    loss = build(spec)
    value = loss(student, loss.teacher_targets(SequenceTeacher(teacher)))
    for b in range(batch):
        t_table, s_table = teacher_table(teacher, b, temperature, "global"), log_prob_table(student, b)
        best = sorted(t_table, key=t_table.get, reverse=True)[:k]
        if kind == "top_wk":
            mass = sum(math.exp(t_table[y]) for y in best)
            expected = -sum(math.exp(t_table[y]) / mass * s_table[y] for y in best)
        else:
            expected = -sum(s_table[y] for y in best) / len(best)
        assert value[b].item() == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_top_wk_weights_are_renormalised_as_in_table_1():
    """Two sequences of teacher probability 0.4 and 0.3 in the 2 best: weights 0.57 / 0.43."""
    emissions = torch.tensor([[[math.log(0.4), math.log(0.3), math.log(0.3) - 0.1]]], dtype=DT)
    teacher = Potentials(emissions, torch.ones(1, 1, dtype=torch.bool))
    weights = build({"type": "top_wk", "k": 2}).teacher_targets(SequenceTeacher(teacher))["teacher_kbest_weights"][0]
    torch.testing.assert_close(weights, torch.tensor([0.4 / 0.7, 0.3 / 0.7], dtype=DT))


@settings(max_examples=30, deadline=None)
@given(cases, st.sampled_from(["crf", "maxent"]), st.sampled_from(["crf", "maxent"]), temperatures, modes, st.booleans())
def test_posterior_kd_matches_enumerated_marginals(args, student_kind, teacher_kind, temperature, mode, constrained):
    seed, batch, n, num_labels = args
    student = crf(seed, batch, n, num_labels, constrained=constrained)
    if student_kind == "maxent":
        student = maxent(seed + 1, batch, n, num_labels, student.mask)
    teacher = crf(seed + 2, batch, n, num_labels, lengths=student.mask.sum(1), constrained=constrained)
    if teacher_kind == "maxent":
        teacher = maxent(seed + 3, batch, n, num_labels, student.mask)
    loss = build({"type": "posterior", "temperature": temperature, "temperature_mode": mode})
    value = loss(student, loss.teacher_targets(SequenceTeacher(teacher)))
    for b in range(batch):
        length = int(student.mask[b].sum())
        t_marg = marginals_of(teacher_table(teacher, b, temperature, mode), length, num_labels)
        s_log_marg = log_marginals_of(log_prob_table(student, b), length, num_labels)
        expected = -torch.where(t_marg > 0, t_marg * s_log_marg, torch.zeros_like(t_marg)).sum().item()
        assert value[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("kind", ["token", "emission"])
@pytest.mark.parametrize("mode", ["local", "global"])
def test_token_and_emission_kd(kind, mode):
    """Eq. 4 / Eq. 5: a per-token distribution, for which both temperature modes are softmax(s / T)."""
    student = crf(1, 3, 4, 3)
    teacher = crf(2, 3, 4, 3, lengths=student.mask.sum(1))
    loss = build({"type": kind, "temperature": 2.0, "temperature_mode": mode})
    value = loss(student, loss.teacher_targets(SequenceTeacher(teacher)))
    for b in range(3):
        length = int(student.mask[b].sum())
        q_t = (teacher.emissions[b, :length] / 2.0).softmax(-1)
        log_q_s = student.emissions[b, :length].log_softmax(-1)
        assert value[b].item() == pytest.approx(-(q_t * log_q_s).sum().item(), rel=1e-9)


def test_posterior_plus_top_wk_is_the_average():
    student = crf(3, 2, 4, 3)
    teacher = crf(4, 2, 4, 3, lengths=student.mask.sum(1))
    mixed = build({"type": "posterior+top_wk", "k": 3})
    posterior, top_wk = build({"type": "posterior"}), build({"type": "top_wk", "k": 3})
    expected = 0.5 * posterior(student, posterior.teacher_targets(SequenceTeacher(teacher))) + 0.5 * top_wk(student, top_wk.teacher_targets(SequenceTeacher(teacher)))
    torch.testing.assert_close(mixed(student, mixed.teacher_targets(SequenceTeacher(teacher))), expected)


@pytest.mark.parametrize("kind", ["structural", "posterior", "emission", "top_wk"])
def test_gradients_reach_only_the_student(kind):
    student = crf(6, 2, 5, 4)
    for t in (student.emissions, student.transitions, student.start, student.end):
        t.requires_grad_(True)
    teacher = crf(7, 2, 5, 4, lengths=student.mask.sum(1))
    for t in (teacher.emissions, teacher.transitions, teacher.start, teacher.end):
        t.requires_grad_(True)
    loss = build({"type": kind})
    targets = loss.teacher_targets(SequenceTeacher(teacher))
    assert all(not v.requires_grad for v in targets.values())
    loss(student, targets).sum().backward()
    assert student.emissions.grad is not None and student.emissions.grad.abs().sum() > 0
    assert teacher.emissions.grad is None and teacher.transitions.grad is None


def test_structural_kd_is_minimised_by_the_teacher_itself():
    """Gibbs' inequality: the cross-entropy is smallest (= the teacher's entropy) when the student is the teacher."""
    teacher = crf(8, 2, 4, 3)
    loss = build({"type": "structural"})
    targets = loss.teacher_targets(SequenceTeacher(teacher))
    at_teacher = loss(teacher, targets)
    other = loss(crf(9, 2, 4, 3, lengths=teacher.mask.sum(1)), targets)
    assert (at_teacher < other).all()


def _through_field(targets, lengths, teacher_labels, student_vocab, all_labels):
    """Targets of a batch, per sentence through TeacherTargetsField (index, pad, batch), as the model sees them."""
    from allennlp.data import Vocabulary

    from allennlp_structkd.dataset_readers.teacher_targets_field import TeacherTargetsField
    from allennlp_structkd.kd.targets import trim_to_length

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
    targets = loss.teacher_targets(SequenceTeacher(teacher))
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
    tags = build({"type": "top_k", "k": 2}).teacher_targets(SequenceTeacher(teacher))
    mapped_tags = _through_field(tags, [4, 2], ["a", "b", "c"], ["c", "a", "b", "d"], ["a", "b", "c", "d"])
    order = torch.tensor([1, 2, 0])  # student index of teacher labels a, b, c
    expected = order[tags["teacher_kbest_tags"]]
    expected[1, :, 2:] = 1  # padding past the second sentence: label id 0 mapped (a -> 1)
    torch.testing.assert_close(mapped_tags["teacher_kbest_tags"][0], expected[0])
    torch.testing.assert_close(mapped_tags["teacher_kbest_tags"][1, :, :2], expected[1, :, :2])


def test_a_student_label_no_teacher_has_is_an_error_at_indexing():
    teacher = crf(10, 1, 3, 2, lengths=[3])
    targets = build({"type": "structural"}).teacher_targets(SequenceTeacher(teacher))
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
    teacher_hidden = torch.randn(2, 4, 6, generator=g, dtype=DT)
    student = Potentials(torch.randn(2, 4, 3, generator=g, dtype=DT), teacher.mask)
    student_hidden = torch.randn(2, 4, 5, generator=g, dtype=DT)
    loss = build({"type": "xtremedistil", "student_hidden_dim": 5, "teacher_hidden_dim": 6, "logit_weight": 0.7,
                  "representation_weight": 0.3, "representation_loss": representation_loss}).double()
    with pytest.raises(ConfigurationError, match="exposes no hidden states"):
        loss.teacher_targets(SequenceTeacher(teacher))
    targets = loss.teacher_targets(SequenceTeacher(teacher, hidden=teacher_hidden))
    with pytest.raises(ConfigurationError, match="needs the student's hidden states"):
        loss(student, targets)
    value = loss(student, targets, student_hidden)
    for b in range(2):
        n = int(teacher.mask[b].sum())
        logit = ((student.emissions[b, :n] - teacher.emissions[b, :n]) ** 2).sum() / 3
        projected = torch.nn.functional.gelu(student_hidden[b, :n] @ loss.projection[0].weight.t() + loss.projection[0].bias)
        if representation_loss == "mse":
            rep = ((projected - teacher_hidden[b, :n]) ** 2).sum() / 6
        else:
            rep = torch.nn.functional.kl_div(projected.log_softmax(-1), teacher_hidden[b, :n].softmax(-1), reduction="sum")
        assert value[b].item() == pytest.approx((0.7 * logit + 0.3 * rep).item(), rel=1e-9)
    value.sum().backward()
    assert loss.projection[0].weight.grad is not None  # the shared projection trains


def test_cache_signatures_change_with_the_target_definitions():
    """Targets computed by the earlier definitions (unnormalised Top-WK, ...) are never read back from a cache."""
    for spec in ({"type": "top_wk", "k": 5}, {"type": "structural", "temperature": 2.0}, {"type": "posterior+top_wk"}):
        assert f"-v{KDLoss.TARGETS_VERSION}-" in build(spec).signature()
    assert KDLoss.TARGETS_VERSION >= 2


def test_an_unknown_target_name_has_no_silent_spec():
    from allennlp_structkd.kd.targets import spec_of

    assert spec_of("teacher_unary").word_dims == ((0, 0),)
    with pytest.raises(KeyError, match="teacher target 'teacher_novel' has no spec"):
        spec_of("teacher_novel")


def test_a_new_output_kind_and_a_new_objective_need_no_change_to_the_losses():
    """A student output kind the library does not have (here: one label for the whole sentence) and an objective of
    its own, defined here: the real objectives train it through the protocol alone."""
    from allennlp_structkd.structures import linear_chain

    class SentenceLabel(Potentials):
        """Every token of a sentence takes the same label: P(a) ∝ exp(Σ_i emissions[i, a])."""

        def _scores(self):
            return self._masked(self.emissions).sum(1)  # (B, L)

        def log_partition(self):
            return torch.logsumexp(self._scores(), dim=1)

        def expected_score(self, unary, pairwise=None):
            return (unary * self._masked(self.emissions)).flatten(1).sum(1)

        def unary_marginals(self):
            return self._masked(self._scores().softmax(1).unsqueeze(1).expand_as(self.emissions))

        def unary_log_marginals(self):
            return self._scores().log_softmax(1).unsqueeze(1).expand_as(self.emissions)

        def sequence_log_probs(self, tags):
            first = tags[:, :, 0]
            return self._scores().log_softmax(1).gather(1, first)

        def tempered_marginals(self, temperature):
            return self.unary_marginals(), None

        def as_chain(self):
            emissions = self._scores().log_softmax(1).unsqueeze(1)
            return linear_chain.LinearChain(emissions, emissions.new_zeros(emissions.size(2), emissions.size(2)),
                                            self.mask[:, :1])

    @KDLoss.register("test_toy_objective", exist_ok=True)
    class ToyObjective(KDLoss):
        """The squared distance of the student's unary marginals to the teacher's."""

        needs = ("teacher_unary",)

        def teacher_targets(self, teacher):  # a teacher's own scores (the potentials recipe)
            return {"teacher_unary": teacher.potentials().detached().unary_marginals()}

        def forward(self, student, targets, student_hidden=None):
            return ((student.unary_marginals() - targets["teacher_unary"]) ** 2).flatten(1).sum(1)

    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    teacher = Potentials(torch.randn(2, 3, 4, generator=g, dtype=DT), mask, torch.randn(4, 4, generator=g, dtype=DT))
    weights = torch.randn(2, 3, 4, generator=g, dtype=DT, requires_grad=True)
    optimizer = torch.optim.SGD([weights], lr=0.1)
    for objective in (KDLoss.by_name("structural")(), KDLoss.by_name("posterior")(), KDLoss.by_name("top_k")(k=2),
                      KDLoss.by_name("test_toy_objective")()):
        student = SentenceLabel(weights, mask)
        loss = objective(student, objective.teacher_targets(SequenceTeacher(teacher))).sum()
        optimizer.zero_grad()
        loss.backward()
        assert torch.isfinite(loss) and weights.grad is not None and torch.isfinite(weights.grad).all()
        optimizer.step()

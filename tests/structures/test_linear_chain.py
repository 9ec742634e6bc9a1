
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from allennlp_structkd.structures import linear_chain
from tests import brute_force


def random_batch(seed, batch, n, num_labels, scale=3.0, boundary=True):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, n, num_labels, generator=g, dtype=torch.float64) * scale
    transitions = torch.randn(num_labels, num_labels, generator=g, dtype=torch.float64) * scale
    lengths = torch.randint(1, n + 1, (batch,), generator=g)
    lengths[0] = n
    if batch > 1:
        lengths[-1] = 1
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    start = torch.randn(num_labels, generator=g, dtype=torch.float64) * scale if boundary else None
    end = torch.randn(num_labels, generator=g, dtype=torch.float64) * scale if boundary else None
    return emissions, transitions, mask, start, end


shapes = st.tuples(
    st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.booleans(),
    st.sampled_from([0.1, 3.0, 1e4]),
)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_log_partition_and_marginals_match_enumeration(args):
    seed, batch, n, num_labels, boundary, scale = args
    emissions, transitions, mask, start, end = random_batch(seed, batch, n, num_labels, scale, boundary)
    log_z = linear_chain.log_partition(emissions, transitions, mask, start, end)
    unary, pair = linear_chain.marginals(emissions, transitions, mask, start, end)
    unary_alone = linear_chain.unary_marginals(emissions, transitions, mask, start, end)
    assert torch.isfinite(unary).all() and torch.isfinite(pair).all()
    for b in range(batch):
        length = int(mask[b].sum())
        ref_z, ref_unary, ref_pair = brute_force.chain_marginals(emissions[b], transitions, length, start, end)
        assert log_z[b].item() == pytest.approx(ref_z, rel=1e-9, abs=1e-6)
        torch.testing.assert_close(unary[b, :length], ref_unary[:length], atol=1e-7, rtol=1e-6)
        torch.testing.assert_close(unary_alone[b, :length], ref_unary[:length], atol=1e-7, rtol=1e-6)
        assert (unary_alone[b, length:] == 0).all()
        torch.testing.assert_close(pair[b, 1:length], ref_pair[1:length], atol=1e-7, rtol=1e-6)
        assert (unary[b, length:] == 0).all() and (pair[b, length:] == 0).all()
        assert (pair[b, 0] == 0).all()
        # consistency: pair marginals sum to the unary marginals on both sides
        if length > 1:
            torch.testing.assert_close(pair[b, 1:length].sum(2), unary[b, : length - 1], atol=1e-7, rtol=0)
            torch.testing.assert_close(pair[b, 1:length].sum(1), unary[b, 1:length], atol=1e-7, rtol=0)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(1, 12))
def test_kbest_matches_enumeration(args, k):
    seed, batch, n, num_labels, boundary, scale = args
    emissions, transitions, mask, start, end = random_batch(seed, batch, n, num_labels, scale, boundary)
    tags, scores = linear_chain.kbest(emissions, transitions, mask, k, start, end)
    assert tags.shape == (batch, k, n) and scores.shape == (batch, k)
    for b in range(batch):
        length = int(mask[b].sum())
        ref = brute_force.chain_sequences(emissions[b], transitions, length, start, end)
        expected = sorted(ref.values(), reverse=True)[:k]
        expected += [float("-inf")] * (k - len(expected))
        got = scores[b].tolist()
        for g_score, e_score in zip(got, expected):
            if e_score == float("-inf"):
                assert g_score == float("-inf")
            else:
                assert g_score == pytest.approx(e_score, rel=1e-9, abs=1e-6)
        seen = set()
        for r in range(k):
            if got[r] == float("-inf"):
                continue
            seq = tuple(tags[b, r, :length].tolist())
            assert seq not in seen, "a sequence appears twice among the k best"
            seen.add(seq)
            assert ref[seq] == pytest.approx(got[r], rel=1e-9, abs=1e-6)
            assert (tags[b, r, length:] == 0).all()


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_viterbi_matches_enumeration_and_sequence_score(args):
    seed, batch, n, num_labels, boundary, scale = args
    emissions, transitions, mask, start, end = random_batch(seed, batch, n, num_labels, scale, boundary)
    tags, scores = linear_chain.viterbi(emissions, transitions, mask, start, end)
    rescored = linear_chain.sequence_score(emissions, transitions, tags, mask, start, end)
    torch.testing.assert_close(rescored, scores)
    for b in range(batch):
        length = int(mask[b].sum())
        ref = brute_force.chain_sequences(emissions[b], transitions, length, start, end)
        assert scores[b].item() == pytest.approx(max(ref.values()), rel=1e-9, abs=1e-6)


def test_forbidden_transitions_get_zero_probability():
    emissions, transitions, mask, _, _ = random_batch(3, 3, 5, 3)
    transitions = transitions.clone()
    transitions[0, 1] = float("-inf")  # e.g. O -> I- in BIO
    start = torch.tensor([0.0, float("-inf"), 0.0], dtype=torch.float64)
    unary, pair = linear_chain.marginals(emissions, transitions, mask, start)
    assert torch.isfinite(unary).all()
    assert (pair[:, :, 0, 1] == 0).all()
    assert (unary[:, 0, 1] == 0).all()
    torch.testing.assert_close(linear_chain.unary_marginals(emissions, transitions, mask, start), unary)
    tags, scores = linear_chain.kbest(emissions, transitions, mask, 50, start)
    for b in range(3):
        length = int(mask[b].sum())
        for r in range(50):
            if scores[b, r] == float("-inf"):
                continue
            seq = tags[b, r, :length].tolist()
            assert seq[0] != 1
            assert all(not (a == 0 and c == 1) for a, c in zip(seq, seq[1:]))


def test_empty_sentence():
    emissions = torch.randn(2, 3, 2, dtype=torch.float64)
    transitions = torch.randn(2, 2, dtype=torch.float64)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    log_z = linear_chain.log_partition(emissions, transitions, mask)
    assert log_z[1].item() == 0.0
    unary, pair = linear_chain.marginals(emissions, transitions, mask)
    assert (unary[1] == 0).all() and (pair[1] == 0).all()
    torch.testing.assert_close(linear_chain.unary_marginals(emissions, transitions, mask), unary)
    assert linear_chain.unary_marginals(emissions[:, :0], transitions).shape == (2, 0, 2)
    tags, scores = linear_chain.kbest(emissions, transitions, mask, 2)
    assert scores[1].tolist() == [0.0, float("-inf")]


def test_marginals_are_gradient_of_log_partition():
    emissions, transitions, mask, start, end = random_batch(7, 3, 5, 4)
    emissions.requires_grad_(True)
    log_z = linear_chain.log_partition(emissions, transitions, mask, start, end)
    (grad,) = torch.autograd.grad(log_z.sum(), emissions)
    unary, _ = linear_chain.marginals(emissions.detach(), transitions, mask, start, end)
    torch.testing.assert_close(grad, unary)


def test_marginals_are_differentiable():
    emissions, transitions, mask, start, end = random_batch(8, 2, 4, 3)
    emissions.requires_grad_(True)
    unary, _ = linear_chain.marginals(emissions, transitions, mask, start, end)
    unary[:, :, 0].sum().backward()
    assert emissions.grad is not None and torch.isfinite(emissions.grad).all()
    (grad_alone,) = torch.autograd.grad(
        linear_chain.unary_marginals(emissions, transitions, mask, start, end)[:, :, 0].sum(), emissions)
    torch.testing.assert_close(grad_alone, emissions.grad)


def test_long_sentences_are_finite():
    torch.manual_seed(0)
    emissions = torch.randn(2, 512, 50, dtype=torch.float32) * 10
    transitions = torch.randn(50, 50, dtype=torch.float32) * 10
    mask = torch.ones(2, 512, dtype=torch.bool)
    mask[1, 300:] = False
    log_z = linear_chain.log_partition(emissions, transitions, mask)
    unary, pair = linear_chain.marginals(emissions, transitions, mask)
    tags, scores = linear_chain.kbest(emissions, transitions, mask, 5)
    for t in (log_z, unary, pair, scores):
        assert torch.isfinite(t).all()
    torch.testing.assert_close(unary[0].sum(-1), torch.ones(512), atol=1e-4, rtol=0)
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_matches_torch_struct():
    torch_struct = pytest.importorskip("torch_struct")
    emissions, transitions, _, _, _ = random_batch(11, 4, 6, 3)
    # torch-struct folds the first emission into the first edge, so every sentence needs 2 tokens
    lengths = torch.tensor([6, 4, 2, 5])
    mask = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)
    # torch-struct's log_potentials[b, i, c, a] score label c at i + 1 after label a at i
    edge = transitions.t().view(1, 1, 3, 3) + emissions[:, 1:].unsqueeze(3)
    edge = edge.clone()
    edge[:, 0] += emissions[:, 0].unsqueeze(1)
    dist = torch_struct.LinearChainCRF(edge, lengths=lengths)
    ts_pair = dist.marginals  # (B, n - 1, C, C) indexed [.., to, from]
    _, pair = linear_chain.marginals(emissions, transitions, mask)
    torch.testing.assert_close(pair[:, 1:], ts_pair.transpose(2, 3) * mask[:, 1:, None, None], atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(linear_chain.log_partition(emissions, transitions, mask), dist.partition)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="transitions"):
        linear_chain.log_partition(torch.zeros(1, 2, 3), torch.zeros(2, 2), None)
    with pytest.raises(ValueError, match="mask"):
        linear_chain.marginals(torch.zeros(1, 2, 3), torch.zeros(3, 3), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="k must"):
        linear_chain.kbest(torch.zeros(1, 2, 3), torch.zeros(3, 3), None, 0)


def test_the_distribution_object_is_the_functions():
    """LinearChain's methods are the module's functions on its fields; its log_prob sums to one over all sequences."""
    import itertools

    from allennlp_structkd.structures.linear_chain import LinearChain

    g = torch.Generator().manual_seed(4)
    emissions, transitions = torch.randn(2, 3, 3, generator=g, dtype=torch.float64), torch.randn(3, 3, generator=g, dtype=torch.float64)
    start, end = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    chain = LinearChain(emissions, transitions, mask, start, end)
    torch.testing.assert_close(chain.log_partition(), linear_chain.log_partition(emissions, transitions, mask, start, end))
    for mine, theirs in zip(chain.marginals(), linear_chain.marginals(emissions, transitions, mask, start, end)):
        torch.testing.assert_close(mine, theirs)
    torch.testing.assert_close(chain.kbest(4)[1], linear_chain.kbest(emissions, transitions, mask, 4, start, end)[1])
    torch.testing.assert_close(chain.viterbi()[1], chain.kbest(1)[1][:, 0])
    for b, length in enumerate([3, 2]):
        total = 0.0
        for seq in itertools.product(range(3), repeat=length):
            tags = torch.zeros(2, 3, dtype=torch.long)
            tags[b, :length] = torch.tensor(seq)
            total += chain.log_prob(tags)[b].exp().item()
        assert abs(total - 1.0) < 1e-9

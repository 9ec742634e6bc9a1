import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from allennlp_structkd.structures import span_dp
from tests import brute_force


def random_spans(seed, batch, n, num_types, scale):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, n, n, num_types, generator=g, dtype=torch.float64) * scale
    lengths = torch.randint(1, n + 1, (batch,), generator=g)
    lengths[0] = n
    if batch > 1:
        lengths[-1] = 1
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    return scores, mask


shapes = st.tuples(
    st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 5), st.integers(1, 3),
    st.sampled_from([0.1, 2.0, 1e4]),
)


@settings(max_examples=30, deadline=None)
@given(shapes)
def test_log_partition_and_bioes_marginals_match_enumeration(args):
    seed, batch, n, num_types, scale = args
    scores, mask = random_spans(seed, batch, n, num_types, scale)
    log_z = span_dp.log_partition(scores, mask)
    marginals = span_dp.bioes_marginals(scores, mask)
    assert marginals.shape == (batch, n, 1 + 4 * num_types)
    assert torch.isfinite(marginals).all()
    for b in range(batch):
        length = int(mask[b].sum())
        ref_z, ref_marginals, _ = brute_force.bioes_marginals(scores[b], length)
        assert log_z[b].item() == pytest.approx(ref_z, rel=1e-9, abs=1e-6)
        torch.testing.assert_close(marginals[b, :length], ref_marginals[:length], atol=1e-7, rtol=1e-6)
        torch.testing.assert_close(marginals[b, :length].sum(1), torch.ones(length, dtype=torch.float64))
        assert (marginals[b, length:] == 0).all()


@settings(max_examples=30, deadline=None)
@given(shapes)
def test_decode_is_the_best_structure(args):
    seed, batch, n, num_types, scale = args
    scores, mask = random_spans(seed, batch, n, num_types, scale)
    tags, best = span_dp.decode(scores, mask)
    for b in range(batch):
        length = int(mask[b].sum())
        structures = list(brute_force.span_enumerate(scores[b], length))
        ref_best = max(s for _, s in structures)
        assert best[b].item() == pytest.approx(ref_best, rel=1e-9, abs=1e-6)
        # the decoded BIOES tags spell a structure with that score
        _, one_hot, _ = brute_force.bioes_marginals(scores[b] * 0, length)  # shapes only
        tag_list = tags[b, :length].tolist()
        spans, i = [], 0
        while i < length:
            tag = tag_list[i]
            if tag == 0:
                i += 1
                continue
            c, kind = divmod(tag - 1, 4)
            if kind == 3:
                spans.append(((i, i), c))
                i += 1
                continue
            assert kind == 0, f"span does not start with B: {tag_list}"
            j = i + 1
            while tag_list[j] == 1 + 4 * c + 1:
                j += 1
            assert tag_list[j] == 1 + 4 * c + 2
            spans.append(((i, j), c))
            i = j + 1
        assert sum(scores[b, i, j, c].item() for (i, j), c in spans) == pytest.approx(ref_best, rel=1e-9, abs=1e-6)
        assert (tags[b, length:] == 0).all()


def test_span_marginals_are_gradient_of_log_partition():
    scores, mask = random_spans(5, 3, 4, 2, 1.0)
    scores.requires_grad_(True)
    (grad,) = torch.autograd.grad(span_dp.log_partition(scores, mask).sum(), scores)
    span, _ = span_dp.span_marginals(scores.detach(), mask)
    torch.testing.assert_close(grad, span)


def test_entries_below_diagonal_and_past_length_are_ignored():
    scores, mask = random_spans(6, 2, 4, 2, 1.0)
    noisy = scores.clone()
    lower = torch.ones(4, 4, dtype=torch.bool).tril(-1)
    noisy[:, lower] = 1e4
    noisy[1, :, 3] = 1e4  # past the second sentence's length (1)
    mask = torch.tensor([[True] * 4, [True, False, False, False]])
    torch.testing.assert_close(span_dp.log_partition(noisy, mask), span_dp.log_partition(scores, mask))


def test_label_names():
    assert span_dp.bioes_label_names(["PER", "LOC"]) == ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def test_long_sentences_are_finite():
    torch.manual_seed(0)
    scores = torch.randn(2, 128, 128, 4) * 5
    mask = torch.ones(2, 128, dtype=torch.bool)
    mask[1, 70:] = False
    marginals = span_dp.bioes_marginals(scores, mask)
    assert torch.isfinite(marginals).all()
    torch.testing.assert_close(marginals[1, :70].sum(1), torch.ones(70), atol=1e-4, rtol=0)


def test_bad_shape():
    with pytest.raises(ValueError, match="span_scores"):
        span_dp.log_partition(torch.zeros(1, 3, 2, 1), torch.ones(1, 3, dtype=torch.bool))

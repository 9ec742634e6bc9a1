"""The serving package's linear chain (numpy) against enumeration of every label sequence, with masks and forbidden transitions."""
import pytest
import torch

from structkd_spacy import chain
from tests.brute_force import chain_marginals, chain_sequences


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_and_marginals_against_enumeration(seed):
    g = torch.Generator().manual_seed(seed)
    batch, n, labels = 4, 5, 3
    emissions = torch.randn(batch, n, labels, generator=g, dtype=torch.float64) * 2
    transitions = torch.randn(labels, labels, generator=g, dtype=torch.float64)
    transitions[0, 2] = -1e4  # a forbidden transition, as an exported CRF has them
    start, end = torch.randn(labels, generator=g, dtype=torch.float64), torch.randn(labels, generator=g, dtype=torch.float64)
    lengths = [5, 3, 1, 0]
    mask = torch.arange(n).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    arrays = [t.numpy() for t in (emissions, transitions, start, end, mask)]
    tags, (probs, log_z) = chain.viterbi(*arrays), chain.marginals(*arrays)
    tags, probs, log_z = torch.from_numpy(tags), torch.from_numpy(probs), torch.from_numpy(log_z)
    for b, length in enumerate(lengths):
        if length == 0:
            assert probs[b].abs().sum() == 0 and log_z[b] == 0 and (tags[b] == 0).all()
            continue
        scores = chain_sequences(emissions[b, :length], transitions, length, start, end)
        best = max(scores, key=scores.get)
        assert tuple(tags[b, :length].tolist()) == best and (tags[b, length:] == 0).all()
        expected_z, unary, _ = chain_marginals(emissions[b, :length], transitions, length, start, end)
        torch.testing.assert_close(probs[b, :length], unary, atol=1e-10, rtol=0)
        assert abs(log_z[b].item() - expected_z) < 1e-9
        assert probs[b, length:].abs().sum() == 0


def test_float32_marginals_stay_close_to_float64_on_long_sentences():
    """Normalised at every position: a log Z in the thousands costs no precision."""
    g = torch.Generator().manual_seed(0)
    emissions = torch.randn(2, 300, 9, generator=g, dtype=torch.float64) * 5 + 10
    transitions = torch.randn(9, 9, generator=g, dtype=torch.float64)
    start, end = torch.zeros(9, dtype=torch.float64), torch.zeros(9, dtype=torch.float64)
    mask = torch.ones(2, 300, dtype=torch.bool)
    exact, log_z = chain.marginals(*[t.numpy() for t in (emissions, transitions, start, end, mask)])
    single, _ = chain.marginals(*[t.float().numpy() for t in (emissions, transitions, start, end)], mask.numpy())
    assert single.dtype == "float32" and log_z.min() > 3000 and abs(single.astype("float64") - exact).max() < 1e-5


def test_softmax_is_each_words_distribution():
    scores = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(torch.from_numpy(chain.softmax(scores.numpy())), scores.softmax(-1), atol=1e-12, rtol=0)

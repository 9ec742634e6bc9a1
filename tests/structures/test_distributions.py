"""
Every output structure's distribution object against enumeration of its structures on tiny inputs: log Z, the
factor marginals, the argmax, the k-best where defined, and both temperatures; one checker for all of them, so a
new structure is one new class and its oracle (shown with a toy structure at the end).
"""
import itertools
import math
from dataclasses import dataclass
from typing import Callable, List, Tuple

import pytest
import torch

from allennlp_structkd.structures import (
    HeadSelection,
    LinearChain,
    Marginals,
    SecondOrderMeanField,
    SpanChart,
    StructuredDistribution,
    TokenSoftmax,
)
from allennlp_structkd.structures.head_selection import arc_mask
from allennlp_structkd.structures.tempering import temper_chain, temper_distribution
from tests.brute_force import chain_sequences, span_enumerate

# one structure of a batch element: (its encoding as argmax/k-best give it, its factor indicator, its score)
Structure = Tuple[Tuple[int, ...], torch.Tensor, float]


def check(distribution: StructuredDistribution, enumerate_of: Callable[[int], List[Structure]], batch: int,
          temperature: float = 2.0) -> None:
    """The distribution of every batch element against the enumeration of its structures."""
    log_z = distribution.log_partition()
    unary = distribution.marginals().unary
    best = distribution.argmax()
    tempered = distribution.tempered(temperature).unary  # global: the whole score over T
    for b in range(batch):
        structures = enumerate_of(b)
        scores = torch.tensor([score for _, _, score in structures], dtype=torch.float64)
        assert log_z[b].item() == pytest.approx(scores.logsumexp(0).item(), abs=1e-9)
        probs, cooled = scores.softmax(0), (scores / temperature).softmax(0)
        expected = sum(p * indicator for p, (_, indicator, _) in zip(probs, structures))
        torch.testing.assert_close(unary[b], expected, atol=1e-9, rtol=0)
        torch.testing.assert_close(tempered[b], sum(p * ind for p, (_, ind, _) in zip(cooled, structures)), atol=1e-9, rtol=0)
        top = max(structures, key=lambda s: s[2])
        assert tuple(best[b].tolist())[: len(top[0])] == top[0]
        if distribution.has_kbest():
            k = min(3, len(structures))
            tags, kscores = distribution.kbest(k)
            ranked = sorted(structures, key=lambda s: -s[2])[:k]
            torch.testing.assert_close(kscores[b], torch.tensor([s[2] for s in ranked], dtype=kscores.dtype), atol=1e-9, rtol=0)
            assert [tuple(t.tolist())[: len(ranked[0][0])] for t in tags[b]] == [s[0] for s in ranked]
    assert distribution.tempered(1.0).unary.equal(unary)


LENGTHS = [3, 2, 1]


def lengths_mask(lengths, n):
    return torch.arange(n).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


@pytest.mark.parametrize("seed", range(3))
def test_token_softmax(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 3, 3, generator=g, dtype=torch.float64) * 2
    mask = lengths_mask(LENGTHS, 3)

    def structures(b):
        found = []
        for tags in itertools.product(range(3), repeat=LENGTHS[b]):
            indicator = torch.zeros(3, 3, dtype=torch.float64)
            indicator[range(len(tags)), list(tags)] = 1
            found.append((tags, indicator, sum(logits[b, i, t].item() for i, t in enumerate(tags))))
        return found

    distribution = TokenSoftmax(logits, mask)
    check(distribution, structures, 3)
    tags = distribution.argmax()
    for b in range(3):  # log P(y) = score(y) - log Z
        score = sum(logits[b, i, t].item() for i, t in enumerate(tags[b, : LENGTHS[b]].tolist()))
        assert distribution.log_prob(tags)[b].item() == pytest.approx(score - distribution.log_partition()[b].item(), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_linear_chain(seed):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(3, 3, 3, generator=g, dtype=torch.float64) * 2
    transitions = torch.randn(3, 3, generator=g, dtype=torch.float64)
    start, end = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    mask = lengths_mask(LENGTHS, 3)

    def structures(b):
        found = []
        for tags, score in chain_sequences(emissions[b, : LENGTHS[b]], transitions, LENGTHS[b], start, end).items():
            indicator = torch.zeros(3, 3, dtype=torch.float64)
            indicator[range(len(tags)), list(tags)] = 1
            found.append((tags, indicator, score))
        return found

    chain = LinearChain(emissions, transitions, mask, start, end)
    check(chain, structures, 3)
    # local temperature: the tempered Markov factorisation of its exact marginals
    unary, pairwise = chain.marginals()
    assert isinstance(chain.marginals(), Marginals)
    expected = temper_chain(unary, pairwise, mask, 2.0)
    local = chain.tempered(2.0, "local")
    torch.testing.assert_close(local.unary, expected[0])
    torch.testing.assert_close(local.pairwise, expected[1])


def head_assignments(arc_scores, length):
    """Every head assignment of words 1..length (the root at 0, no self-loops): (heads, indicator, first-order score)."""
    n = arc_scores.size(0)
    found = []
    for heads in itertools.product(range(length + 1), repeat=length):
        if any(h == m + 1 for m, h in enumerate(heads)):
            continue
        indicator = torch.zeros(n, n, dtype=torch.float64)
        for m, h in enumerate(heads):
            indicator[m + 1, h] = 1
        found.append(((0, *heads), indicator, sum(arc_scores[m + 1, h].item() for m, h in enumerate(heads))))
    return found


@pytest.mark.parametrize("seed", range(3))
def test_head_selection(seed):
    g = torch.Generator().manual_seed(seed)
    arcs = torch.randn(2, 4, 4, generator=g, dtype=torch.float64) * 2
    words = [3, 2]
    mask = lengths_mask([w + 1 for w in words], 4)  # the root and the words
    check(HeadSelection(arcs, mask), lambda b: head_assignments(arcs[b], words[b]), 2)
    assert not HeadSelection.has_kbest()
    with pytest.raises(NotImplementedError, match="HeadSelection has no k-best"):
        HeadSelection(arcs, mask).kbest(2)
    local = HeadSelection(arcs, mask).tempered(2.0, "local").unary  # each word's head distribution, tempered
    torch.testing.assert_close(local, temper_distribution(HeadSelection(arcs, mask).marginals().unary, 2.0, 2))


def second_order_score(heads, arcs, sibling, grandparent):
    """E(z) of module second_order's docstring, for one head assignment (heads[m] the head of m; heads[0] unused)."""
    n = len(heads)
    score = sum(arcs[m, heads[m]].item() for m in range(1, n))
    for m in range(1, n):
        for s in range(1, n):
            if s != m and heads[s] == heads[m]:
                score += sibling[m, heads[m], s].item()
        h = heads[m]
        if h > 0:
            score += grandparent[m, h, heads[h]].item()
    return score


def test_second_order_mean_field_bounds_the_exact_distribution_and_is_it_without_second_order_scores():
    g = torch.Generator().manual_seed(0)
    arcs = torch.randn(1, 4, 4, generator=g, dtype=torch.float64)
    sibling = torch.randn(1, 4, 4, 4, generator=g, dtype=torch.float64) * 0.5
    grandparent = torch.randn(1, 4, 4, 4, generator=g, dtype=torch.float64) * 0.5
    mask = torch.ones(1, 4, dtype=torch.bool)
    first_order = SecondOrderMeanField(arcs, mask, iterations=3)
    check(first_order, lambda b: head_assignments(arcs[b], 3), 1)  # no second-order scores: exact
    second = SecondOrderMeanField(arcs, mask, sibling, grandparent, iterations=10)
    structures = head_assignments(arcs[0], 3)
    exact = torch.tensor([second_order_score(heads, arcs[0], sibling[0], grandparent[0]) for heads, _, _ in structures])
    assert second.log_partition().item() <= exact.logsumexp(0).item() + 1e-9  # mean field's bound (Gibbs)
    q = second.marginals().unary
    rows = q[0, 1:].sum(1)
    torch.testing.assert_close(rows, torch.ones_like(rows))
    assert (second.argmax()[0, 1:] == q[0, 1:].argmax(1)).all() and second.argmax()[0, 0] == 0
    scaled = second.scaled(0.5)
    torch.testing.assert_close(scaled.sibling_scores, sibling * 0.5)


@pytest.mark.parametrize("seed", range(2))
def test_span_chart(seed):
    g = torch.Generator().manual_seed(seed)
    spans = torch.randn(2, 3, 3, 2, generator=g, dtype=torch.float64)
    lengths = [3, 2]
    mask = lengths_mask(lengths, 3)

    def structures(b):
        found = []
        for labeled, score in span_enumerate(spans[b], lengths[b]):
            indicator = torch.zeros(3, 3, 2, dtype=torch.float64)
            tags = [0] * lengths[b]
            for (i, j), c in labeled:
                indicator[i, j, c] = 1
                if i == j:
                    tags[i] = 1 + 4 * c + 3
                else:
                    tags[i], tags[j] = 1 + 4 * c, 1 + 4 * c + 2
                    for t in range(i + 1, j):
                        tags[t] = 1 + 4 * c + 1
            found.append((tuple(tags), indicator, score))
        return found

    chart = SpanChart(spans, mask)
    check(chart, structures, 2)
    with pytest.raises(ValueError, match="no local temperature"):
        chart.tempered(2.0, "local")
    assert chart.bioes_marginals().shape == (2, 3, 9)


def test_a_temperature_must_be_positive_and_its_mode_known():
    chain = TokenSoftmax(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="must be positive"):
        chain.tempered(0.0)
    with pytest.raises(ValueError, match="one of global, local"):
        chain.tempered(2.0, "sideways")


@dataclass
class Pointer(StructuredDistribution):
    """A toy structure: each sentence points at exactly one of its words. ``scores`` ``(B, n)``; marginals ``(B, n)``;
    argmax ``(B, 1)``, the word pointed at; k-best the k best words."""

    scores: torch.Tensor
    mask: torch.Tensor

    def _masked(self):
        return self.scores.masked_fill(~self.mask, float("-inf"))

    def log_partition(self):
        return self._masked().logsumexp(1)

    def marginals(self):
        return Marginals(self._masked().softmax(1))

    def argmax(self):
        return self._masked().argmax(1, keepdim=True)

    def kbest(self, k):
        scores, words = self._masked().topk(k, dim=1)
        return words.unsqueeze(2), scores

    def scaled(self, factor):
        return Pointer(self.scores * factor, self.mask)


def test_a_new_structure_is_one_class_and_its_oracle():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 4, generator=g, dtype=torch.float64)
    mask = lengths_mask([4, 3], 4)

    def structures(b):
        return [((i,), torch.eye(4, dtype=torch.float64)[i], scores[b, i].item()) for i in range(int(mask[b].sum()))]

    check(Pointer(scores, mask), structures, 2)
    assert Pointer.has_kbest() and math.isclose(Pointer(scores, mask).tempered(1.0).unary.sum().item(), 2.0)
    torch.testing.assert_close(arc_mask(torch.ones(1, 2, dtype=torch.bool)).long(), torch.tensor([[[0, 0], [1, 0]]]))

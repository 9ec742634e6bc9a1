import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from allennlp_structkd.structures import head_selection, rel_pos, second_order
from tests import brute_force


def random_parse(seed, batch, n, num_labels=3, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    arc = torch.randn(batch, n, n, generator=g, dtype=torch.float64) * scale
    labels = torch.randn(batch, n, n, num_labels, generator=g, dtype=torch.float64) * scale
    sib = torch.randn(batch, n, n, n, generator=g, dtype=torch.float64) * scale
    grd = torch.randn(batch, n, n, n, generator=g, dtype=torch.float64) * scale
    lengths = torch.randint(2, n + 1, (batch,), generator=g)  # root + at least one word
    lengths[0] = n
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    return arc, labels, sib, grd, mask


def brute_head_selection(arc, labels, length):
    """Enumerate every head assignment (each word any head but itself): marginals of heads and labels."""
    words = range(1, length)
    heads = torch.zeros(length, length, dtype=torch.float64)
    label_marg = torch.zeros(length, labels.size(-1), dtype=torch.float64)
    choices = [[h for h in range(length) if h != m] for m in words]
    scored = [
        (assignment, sum(arc[m, h].item() for m, h in zip(words, assignment)))
        for assignment in itertools.product(*choices)
    ]
    log_z = brute_force.logsumexp([s for _, s in scored])
    for assignment, s in scored:
        p = math.exp(s - log_z)
        for m, h in zip(words, assignment):
            heads[m, h] += p
            label_marg[m] += p * labels[m, h].softmax(-1)
    return heads, label_marg


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(2, 5), st.sampled_from([0.5, 3.0, 1e4]))
def test_head_selection_matches_enumeration(seed, batch, n, scale):
    arc, labels, _, _, mask = random_parse(seed, batch, n, scale=scale)
    heads = head_selection.head_marginals(arc, mask)
    label_marg = head_selection.label_marginals(arc, labels, mask)
    assert torch.isfinite(heads).all() and torch.isfinite(label_marg).all()
    for b in range(batch):
        length = int(mask[b].sum())
        ref_heads, ref_labels = brute_head_selection(arc[b], labels[b], length)
        torch.testing.assert_close(heads[b, :length, :length], ref_heads, atol=1e-9, rtol=1e-7)
        torch.testing.assert_close(label_marg[b, :length], ref_labels, atol=1e-9, rtol=1e-7)
        assert (heads[b, length:] == 0).all() and (heads[b, :, length:] == 0).all()
        assert (heads[b, 0] == 0).all() and (torch.diagonal(heads[b]) == 0).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(2, 5), st.integers(0, 6))
def test_mfvi_without_second_order_scores_is_head_selection(seed, batch, n, iterations):
    arc, _, sib, grd, mask = random_parse(seed, batch, n)
    expected = head_selection.head_marginals(arc, mask)
    zero = torch.zeros_like(sib)
    torch.testing.assert_close(second_order.mfvi_marginals(arc, mask, zero, zero, iterations), expected)
    torch.testing.assert_close(second_order.mfvi_marginals(arc, mask, sib, grd, 0), expected)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(2, 6))
def test_mfvi_converges_to_a_fixed_point_of_the_mean_field_energy(seed, batch, n):
    arc, _, sib, grd, mask = random_parse(seed, batch, n, scale=0.1)  # weak coupling: MFVI converges
    q = second_order.mfvi_marginals(arc, mask, sib, grd, iterations=200)
    # fixed point: one more update changes nothing
    logits = second_order.mfvi_logits(arc, mask, sib, grd, iterations=201)
    again = logits.softmax(2).masked_fill(~head_selection.arc_mask(mask), 0.0)
    torch.testing.assert_close(again, q, atol=1e-10, rtol=0)
    # and the update is softmax of the gradient of the expected energy written out term by term
    q_var = q.clone().requires_grad_(True)
    energy = second_order.expected_energy(q_var, arc, mask, sib, grd).sum()
    (grad,) = torch.autograd.grad(energy, q_var)
    possible = head_selection.arc_mask(mask)
    from_energy = grad.masked_fill(~possible, float("-inf")).softmax(2).masked_fill(~possible, 0.0)
    torch.testing.assert_close(from_energy, q, atol=1e-10, rtol=0)
    rows = q.sum(2)
    words = possible.any(2)
    torch.testing.assert_close(rows[words], torch.ones_like(rows[words]))


def test_mfvi_update_matches_explicit_loops():
    arc, _, sib, grd, mask = random_parse(3, 1, 4)
    q = head_selection.head_marginals(arc, mask)
    logits = second_order.mfvi_logits(arc, mask, sib, grd, iterations=1)
    n = 4
    for m in range(1, n):
        for h in range(n):
            if h == m:
                continue
            value = arc[0, m, h].item()
            for s in range(1, n):
                if s not in (m, h):
                    value += (sib[0, m, h, s] + sib[0, s, h, m]).item() * q[0, s, h].item()
            for g in range(n):
                if g != m:
                    value += grd[0, m, h, g].item() * q[0, h, g].item()
            for c in range(1, n):
                if c != h:
                    value += grd[0, c, m, h].item() * q[0, c, m].item()
            assert logits[0, m, h].item() == pytest.approx(value, rel=1e-9, abs=1e-9)


# --- relative-PoS encoding -------------------------------------------------------------------

def test_encode_examples():
    pos = ["DET", "NOUN", "VERB", "DET", "NOUN"]
    heads = [2, 3, 0, 5, 3]
    assert rel_pos.encode(heads, pos) == ["+1@NOUN", "+1@VERB", "-1@ROOT", "+1@NOUN", "-1@VERB"]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_encode_decode_round_trip(data):
    n = data.draw(st.integers(1, 8))
    pos = data.draw(st.lists(st.sampled_from(["N", "V", "D"]), min_size=n, max_size=n))
    heads = [data.draw(st.sampled_from([h for h in range(n + 1) if h != i + 1])) for i in range(n)]
    assert rel_pos.decode(rel_pos.encode(heads, pos), pos) == heads


def test_decode_fallbacks():
    pos = ["N", "V", "N"]
    # +3@N from word 1: only one N to the right -> clipped to it
    assert rel_pos.decode(["+3@N", "-1@ROOT", "-1@V"], pos) == [3, 0, 2]
    # +1@V from word 2 (the V itself): none to the right -> nearest V to the left? none -> root
    assert rel_pos.decode(["+1@V", "+1@V", "-1@V"], pos) == [2, 0, 2]
    # unknown PoS and unparsable labels go to the root
    assert rel_pos.decode(["+1@ADJ", "garbage", "+0@N"], pos) == [0, 0, 0]
    # +1@N from word 3: no N to the right -> nearest N to the left
    assert rel_pos.decode(["-1@ROOT", "-1@ROOT", "+1@N"], pos) == [0, 0, 1]


def test_encode_rejects_bad_heads():
    with pytest.raises(ValueError, match="out of range"):
        rel_pos.encode([5], ["N"])
    with pytest.raises(ValueError, match="own head"):
        rel_pos.encode([1], ["N"])


def test_relative_offsets_match_encode():
    g = torch.Generator().manual_seed(0)
    names = [rel_pos.ROOT_POS, "N", "V", "D"]
    batch, n = 3, 7
    pos_ids = torch.randint(1, 4, (batch, n), generator=g)
    pos_ids[:, 0] = 0
    lengths = torch.tensor([7, 4, 2])
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    offsets = rel_pos.relative_offsets(pos_ids, mask, len(names))
    for b in range(batch):
        length = int(lengths[b])
        pos = [names[p] for p in pos_ids[b, 1:length].tolist()]
        for m in range(1, length):
            for h in range(length):
                if h == m:
                    continue
                heads = [1 if i + 1 != 1 else 0 for i in range(length - 1)]
                heads[m - 1] = h
                label = rel_pos.encode(heads, pos)[m - 1]
                assert label == f"{int(offsets[b, m, h]):+d}@{names[pos_ids[b, h]]}"


def test_head_distribution_maps_onto_labels_and_sums_to_one():
    g = torch.Generator().manual_seed(1)
    names = [rel_pos.ROOT_POS, "N", "V"]
    pos_vocab = {p: i for i, p in enumerate(names)}
    batch, n = 2, 6
    pos_ids = torch.randint(1, 3, (batch, n), generator=g)
    pos_ids[:, 0] = 0
    mask = torch.arange(n).unsqueeze(0) < torch.tensor([[6], [4]])
    arc = torch.randn(batch, n, n, generator=g, dtype=torch.float64)
    heads = head_selection.head_marginals(arc, mask)
    labels = [f"{o:+d}@{p}" for o in (-2, -1, 1, 2) for p in names]
    label_vocab = {label: i for i, label in enumerate(labels)}
    table = rel_pos.label_table(label_vocab, pos_vocab, max_offset=2)
    dist = rel_pos.head_distribution_to_labels(heads, pos_ids, mask, table, len(labels))
    words = head_selection.arc_mask(mask).any(2)
    torch.testing.assert_close(dist.sum(2)[words], torch.ones(int(words.sum()), dtype=torch.float64))
    # against a loop over heads, with renormalisation over the heads the vocabulary covers
    for b in range(batch):
        length = int(mask[b].sum())
        pos = [names[p] for p in pos_ids[b, 1:length].tolist()]
        for m in range(1, length):
            expected = torch.zeros(len(labels), dtype=torch.float64)
            for h in range(length):
                if h == m:
                    continue
                hs = [0] * (length - 1)
                hs[m - 1] = h
                label = rel_pos.encode(hs, pos)[m - 1]
                if label in label_vocab:
                    expected[label_vocab[label]] += heads[b, m, h]
            torch.testing.assert_close(dist[b, m], expected / expected.sum())
    # with an unknown label the mass goes there and nothing is renormalised
    with_unknown = rel_pos.head_distribution_to_labels(heads, pos_ids, mask, table, len(labels) + 1, len(labels))
    torch.testing.assert_close(with_unknown.sum(2)[words], torch.ones(int(words.sum()), dtype=torch.float64))


def test_head_distribution_sends_each_labels_probability_to_its_decoded_head():
    from allennlp_structkd.structures import rel_pos

    g = torch.Generator().manual_seed(0)
    pos = ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"]
    parts = ["+1@NOUN", "-1@VERB", "+1@VERB", "-1@ROOT", "+2@NOUN", "-1@NOUN", "+3@DET", "garbage"]
    probs = torch.rand(len(pos), len(parts), generator=g, dtype=torch.float64).softmax(1)
    distribution = rel_pos.head_distribution(probs, parts, pos)
    expected = torch.zeros(len(pos), len(pos) + 1, dtype=torch.float64)
    for i in range(len(pos)):  # one word, one label at a time, by decode itself
        for label, part in enumerate(parts):
            labels = ["-1@ROOT"] * len(pos)
            labels[i] = part
            expected[i, rel_pos.decode(labels, pos)[i]] += probs[i, label]
    torch.testing.assert_close(distribution, expected)
    torch.testing.assert_close(distribution.sum(1), torch.ones(len(pos), dtype=torch.float64))


def test_the_sequence_labeling_parser_always_outputs_trees(seq_label_parser_archive):
    """Random labels decode to cycles and rootless heads; what comes out is a tree, and a tree decoded stays as it was."""
    from allennlp.models.archival import load_archive

    from allennlp_structkd.structures import rel_pos

    model = load_archive(seq_label_parser_archive).model
    pos_tags = ["NOUN", "VERB", "DET", "ADJ", "PUNCT", "PRON"]
    lengths, n, repaired = [9, 5, 1, 7, 9, 3], 9, 0
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        metadata = [{"upos": [pos_tags[int(k)] for k in torch.randint(len(pos_tags), (length,), generator=g)]}
                    for length in lengths]
        probs = torch.rand(len(lengths), n, model.num_labels, generator=g).softmax(2)
        tags = torch.multinomial(probs.view(-1, model.num_labels), 1, generator=g).view(len(lengths), n)
        mask = torch.arange(n).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        heads, deprels = model.decode_trees(tags, mask, metadata, probs)
        raw, _ = model.decode_trees(tags, mask, metadata)
        for b, length in enumerate(lengths):
            assert len(heads[b]) == len(deprels[b]) == length and rel_pos.is_tree(heads[b]), heads[b]
            if rel_pos.is_tree(raw[b]):
                assert heads[b] == raw[b]
            repaired += not rel_pos.is_tree(raw[b])
    assert repaired > 5  # the repair was needed, and done


def _trees(n):
    """Every head assignment of n words (0 = root) that is a tree rooted at 0 (several words may attach to it)."""
    for heads in itertools.product(range(n + 1), repeat=n):
        if all(h != i + 1 for i, h in enumerate(heads)) and rel_pos.is_tree(list(heads)):
            yield list(heads)


@pytest.mark.parametrize("seed", range(12))
def test_mst_heads_finds_the_best_tree(seed):
    """Against every tree of sentences of 1 to 5 words: the decoder's objective is AllenNLP's decode_mst's, the sum of
    the probabilities of the chosen heads (exp of the log-probabilities it is given)."""
    g = torch.Generator().manual_seed(seed)
    lengths = [5, 4, 3, 2, 1]
    n = max(lengths) + 1
    arc = torch.randn(len(lengths), n, n, generator=g, dtype=torch.float64) * 3
    mask = torch.arange(n).unsqueeze(0) < (torch.tensor(lengths) + 1).unsqueeze(1)
    from allennlp_structkd.structures.mst import mst_heads

    log_probs = head_selection.head_log_probs(arc, mask)
    heads = mst_heads(log_probs, mask)
    for b, length in enumerate(lengths):
        probs = log_probs[b].exp()
        score = lambda tree: sum(probs[i + 1, h].item() for i, h in enumerate(tree))  # noqa: E731
        best = max(score(tree) for tree in _trees(length))
        found = heads[b, 1 : length + 1].tolist()
        assert rel_pos.is_tree(found) and score(found) == pytest.approx(best, rel=1e-9, abs=1e-12), (found, b)

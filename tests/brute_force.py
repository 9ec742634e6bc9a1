"""Brute-force oracles: enumerate every structure of tiny inputs (float64, plain Python loops)."""
import itertools
import math
from typing import Dict, List, Tuple

import torch


def chain_sequences(emissions, transitions, length, start=None, end=None) -> Dict[Tuple[int, ...], float]:
    """Score of every label sequence of one sentence (emissions (n, L))."""
    num_labels = emissions.size(1)
    scores = {}
    for seq in itertools.product(range(num_labels), repeat=length):
        s = 0.0
        for i, y in enumerate(seq):
            s += emissions[i, y].item()
            if i > 0:
                s += transitions[seq[i - 1], y].item()
        if length and start is not None:
            s += start[seq[0]].item()
        if length and end is not None:
            s += end[seq[-1]].item()
        scores[seq] = s
    return scores


def logsumexp(values: List[float]) -> float:
    finite = [v for v in values if v != float("-inf")]
    if not finite:
        return float("-inf")
    top = max(finite)
    return top + math.log(sum(math.exp(v - top) for v in finite))


def chain_marginals(emissions, transitions, length, start=None, end=None):
    scores = chain_sequences(emissions, transitions, length, start, end)
    log_z = logsumexp(list(scores.values()))
    n, num_labels = emissions.shape
    unary = torch.zeros(n, num_labels, dtype=torch.float64)
    pair = torch.zeros(n, num_labels, num_labels, dtype=torch.float64)
    for seq, s in scores.items():
        p = math.exp(s - log_z)
        for i, y in enumerate(seq):
            unary[i, y] += p
            if i > 0:
                pair[i, seq[i - 1], y] += p
    return log_z, unary, pair


def span_structures(length: int):
    """All sets of non-overlapping spans (i, j) over `length` tokens, as lists of spans."""
    if length == 0:
        yield []
        return
    # the last token is either outside every span or ends a span (i, length - 1)
    for rest in span_structures(length - 1):
        yield rest
    for i in range(length):
        for rest in span_structures(i):
            yield rest + [(i, length - 1)]


def span_enumerate(span_scores, length):
    """(labeled structure, score) for every labeled structure; span_scores (n, n, C)."""
    num_types = span_scores.size(2)
    for spans in span_structures(length):
        for types in itertools.product(range(num_types), repeat=len(spans)):
            labeled = list(zip(spans, types))
            yield labeled, sum(span_scores[i, j, c].item() for (i, j), c in labeled)


def bioes_marginals(span_scores, length):
    n, _, num_types = span_scores.shape
    structures = list(span_enumerate(span_scores, length))
    log_z = logsumexp([s for _, s in structures])
    result = torch.zeros(n, 1 + 4 * num_types, dtype=torch.float64)
    for labeled, s in structures:
        p = math.exp(s - log_z)
        tags = [0] * length
        for (i, j), c in labeled:
            if i == j:
                tags[i] = 1 + 4 * c + 3
            else:
                tags[i] = 1 + 4 * c
                tags[j] = 1 + 4 * c + 2
                for t in range(i + 1, j):
                    tags[t] = 1 + 4 * c + 1
        for t, tag in enumerate(tags):
            result[t, tag] += p
    return log_z, result, structures

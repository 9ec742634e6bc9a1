"""
Linear-chain CRF inference for serving, in numpy (the same for the PyTorch and the ONNX network, and for the
library's CRF tagger, which decodes with it): Viterbi decoding and exact per-token marginals, batched over
sentences (a loop over positions only). Shapes:
``emissions`` ``(B, n, L)``, ``transitions`` ``(L, L)`` [from, to], ``start``/``end`` ``(L,)``, ``mask``
``(B, n)`` (bool) with every sentence's tokens first (padding after).
"""
from typing import List, Tuple

import numpy


def viterbi(emissions: numpy.ndarray, transitions: numpy.ndarray, start: numpy.ndarray, end: numpy.ndarray,
            mask: numpy.ndarray) -> numpy.ndarray:
    """The best label sequence ``(B, n)`` (int64, 0 past each length)."""
    batch, length, labels = emissions.shape
    if length == 0:
        return numpy.zeros((batch, 0), dtype=numpy.int64)
    score = start + emissions[:, 0]  # (B, L)
    pointers = []
    identity = numpy.broadcast_to(numpy.arange(labels), (batch, labels))
    for i in range(1, length):
        candidates = score[:, :, None] + transitions  # (B, from, to)
        pointer = candidates.argmax(axis=1)  # the best previous label of each label
        best = numpy.take_along_axis(candidates, pointer[:, None, :], axis=1)[:, 0]
        step = mask[:, i, None]
        score = numpy.where(step, best + emissions[:, i], score)  # past a sentence's end its score rides along
        pointers.append(numpy.where(step, pointer, identity))
    last = (score + end).argmax(axis=1)
    steps = [last]
    for pointer in reversed(pointers):
        last = numpy.take_along_axis(pointer, last[:, None], axis=1)[:, 0]
        steps.append(last)
    tags = numpy.stack(steps[::-1], axis=1).astype(numpy.int64)
    return numpy.where(mask, tags, 0)


def marginals(emissions: numpy.ndarray, transitions: numpy.ndarray, start: numpy.ndarray, end: numpy.ndarray,
              mask: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """
    ``(P(y_i = a) (B, n, L), log Z (B,))`` by the forward-backward algorithm; 0 past each length.

    Scaled, in probability space: the scores are exponentiated once (each position's emissions less their
    maximum, the transitions less theirs; a forbidden transition's -1e4 becomes 0) and the forward and
    backward vectors renormalised at every step, so that each step is one matrix product and float32
    keeps its precision; log Z is rebuilt from the normalisers and the maxima taken out. A position's
    marginals are the normalised product of its forward and backward vectors (exact:
    ``Σ_a α_i(a) β_i(a) = Z`` at every position).
    """
    batch, length, labels = emissions.shape
    dtype = emissions.dtype
    if length == 0:
        return numpy.zeros((batch, 0, labels), dtype=dtype), numpy.zeros(batch, dtype=dtype)
    tiny = numpy.finfo(dtype).tiny
    top = transitions.max()
    moves = numpy.exp(transitions - top)  # (L, L)
    peaks = emissions.max(axis=2, keepdims=True)  # (B, n, 1)
    local = numpy.exp(emissions - peaks)  # (B, n, L)
    inside = mask.astype(dtype)
    first = start + emissions[:, 0]
    first_peak = first.max(axis=1, keepdims=True)
    alpha = numpy.exp(first - first_peak)
    norm = numpy.maximum(alpha.sum(1, keepdims=True), tiny)
    alphas = [alpha / norm]
    log_z = first_peak[:, 0] + numpy.log(norm[:, 0])
    for i in range(1, length):
        step = (alphas[-1] @ moves) * local[:, i]
        norm = numpy.maximum(step.sum(1, keepdims=True), tiny)
        alphas.append(numpy.where(mask[:, i, None], step / norm, alphas[-1]))
        log_z = log_z + inside[:, i] * (peaks[:, i, 0] + top + numpy.log(norm[:, 0]))
    end_peak = end.max()
    closing = numpy.maximum((alphas[-1] * numpy.exp(end - end_peak)).sum(1), tiny)
    log_z = log_z + end_peak + numpy.log(closing)
    lengths = mask.sum(1)
    ends = numpy.broadcast_to(numpy.exp(end - end_peak), (batch, labels))
    betas: List[numpy.ndarray] = [ends] * length  # each set below
    beta = ends
    for i in range(length - 1, -1, -1):
        if i < length - 1:
            step = (local[:, i + 1] * beta) @ moves.T
            step = step / numpy.maximum(step.sum(1, keepdims=True), tiny)
            # the last token of a sentence ends it: its backward vector is the end scores
            beta = numpy.where((i < lengths - 1)[:, None], step, ends)
        betas[i] = beta
    joint = numpy.stack(alphas, axis=1) * numpy.stack(betas, axis=1)
    probs = joint / numpy.maximum(joint.sum(2, keepdims=True), tiny)
    return (probs * inside[:, :, None]).astype(dtype), numpy.where(lengths > 0, log_z, 0).astype(dtype)


def softmax(scores: numpy.ndarray) -> numpy.ndarray:
    """Each word's label distribution ``(B, n, L)`` from its scores (a MaxEnt tagger, the parser)."""
    shifted = numpy.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)

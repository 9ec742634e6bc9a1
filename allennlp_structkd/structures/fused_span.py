"""
A fused GPU kernel (Triton) for the semi-Markov forward and backward sums of :mod:`span_dp`.

The PyTorch path of :mod:`span_dp` runs ``2n`` Python steps of several small kernels each. Here one
Triton program runs one sentence: its prefix sums ``f`` and suffix sums ``g`` live in registers (a
vector over positions, updated in place with a select) and both loops run inside the kernel. The
span marginals and their BIOES aggregation are plain tensor algebra and stay in :mod:`span_dp`.

Arithmetic is float64, as on the PyTorch path: the sums are absolute log-scores that grow with the
length, and marginals are differences of them. This module imports Triton; :mod:`span_dp` imports
it only when handed CUDA tensors (see :mod:`fused_chain` for the interpreter used by the tests).
"""
import torch
import triton
import triton.language as tl

__all__ = ["MAX_LENGTH", "supports", "prefix_suffix_sums"]

# One program holds a vector over positions in registers.
MAX_LENGTH = 1024


@triton.jit
def _logaddexp(a, b):
    top = tl.maximum(a, b)
    return top + tl.log(tl.exp(a - top) + tl.exp(b - top))


@triton.jit
def _lse(vector):
    top = tl.max(vector, 0)
    return top + tl.log(tl.sum(tl.exp(vector - top), 0))


@triton.jit
def _semi_markov_kernel(
    span_lse_ptr, columns_ptr, lengths_ptr, f_ptr, g_ptr, n, NEG: tl.constexpr, BLOCK_N: tl.constexpr
):
    # program (sentence, 0) computes f, program (sentence, 1) computes g: the two are independent
    sentence = tl.program_id(0)
    length = tl.load(lengths_ptr + sentence)
    positions = tl.arange(0, BLOCK_N)  # 0..n-1: a span's start i, or its end j
    rows = sentence.to(tl.int64) * (n + 1)
    if tl.program_id(1) == 0:
        # f[j]: log-sum over the structures of tokens 0..j-1; token j is outside every span, or ends
        # a span (i, j) that follows the prefix f[i]. The vector holds f[0..n-1], `whole` f[length].
        columns = columns_ptr + sentence.to(tl.int64) * n * n  # [j, i]: a column is contiguous
        f = tl.where(positions == 0, 0.0, NEG).to(tl.float64)
        whole = tl.zeros((1,), dtype=tl.float64)
        for j in range(0, length):
            before = positions <= j
            column = tl.load(columns + j * n + positions, mask=before, other=NEG)
            ending = _lse(tl.where(before, f + column, NEG))
            previous = tl.sum(tl.where(positions == j, f, 0.0), 0)
            value = _logaddexp(previous, ending)
            f = tl.where(positions == j + 1, value, f)
            whole = tl.zeros((1,), dtype=tl.float64) + value
        # past the length nothing is added: f stays at the whole sentence's sum, as on the PyTorch path
        f = tl.where(positions > length, tl.sum(whole, 0), f)
        tl.store(f_ptr + rows + positions, f, mask=positions < n)
        tl.store(f_ptr + rows + n + tl.arange(0, 1), whole)
    else:
        # g[i]: log-sum over the structures of tokens i..length-1 (0 from the length on). `after[j]`
        # holds g[j + 1], so that a span (i, j) is followed by after[j]; `first` is g[0].
        spans = span_lse_ptr + sentence.to(tl.int64) * n * n  # [i, j]: a row is contiguous
        after = tl.zeros((BLOCK_N,), dtype=tl.float64)
        first = tl.zeros((1,), dtype=tl.float64)
        for step in range(0, length):
            i = length - 1 - step
            inside = (positions >= i) & (positions < length)
            row = tl.load(spans + i * n + positions, mask=inside, other=NEG)
            starting = _lse(tl.where(inside, row + after, NEG))
            following = tl.sum(tl.where(positions == i, after, 0.0), 0)
            value = _logaddexp(following, starting)
            after = tl.where(positions == i - 1, value, after)
            first = tl.zeros((1,), dtype=tl.float64) + value
        tl.store(g_ptr + rows + 1 + positions, after, mask=positions < n)
        tl.store(g_ptr + rows + tl.arange(0, 1), first)


def supports(span_lse: torch.Tensor) -> bool:
    """Whether the fused kernel serves these span scores ``(B, n, n)``."""
    return 0 < span_lse.size(1) <= MAX_LENGTH


def prefix_suffix_sums(span_lse: torch.Tensor, lengths: torch.Tensor, neg: float):
    """
    ``span_lse`` ``(B, n, n)`` float64: the log-sum over types of each span, ``neg`` where impossible;
    ``lengths`` ``(B,)``. Returns ``(f (B, n + 1), g (B, n + 1))`` as :func:`span_dp._inside_outside`
    defines them.
    """
    batch, n, _ = span_lse.shape
    span_lse = span_lse.contiguous()
    columns = span_lse.transpose(1, 2).contiguous()  # coalesced loads of a column, for one copy
    f = torch.empty(batch, n + 1, dtype=torch.float64, device=span_lse.device)
    g = torch.empty_like(f)
    block = triton.next_power_of_2(n)
    _semi_markov_kernel[(batch, 2)](
        span_lse, columns, lengths.to(torch.int32).contiguous(), f, g, n, NEG=neg, BLOCK_N=block,
        num_warps=1 if block <= 64 else 2 if block <= 128 else 4,
    )
    return f, g

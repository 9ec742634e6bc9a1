"""
Fused GPU kernels (Triton) for the linear-chain forward-backward of :mod:`linear_chain`.

The PyTorch path of :mod:`linear_chain` launches several small kernels per position, so on a GPU a
sentence costs a fixed ~0.3 ms per word whatever the batch. Here one Triton program runs one whole
sentence: its forward scores live in registers and the loop over positions runs inside the kernel,
so a pass is one launch. Two kernels:

* ``_forward_kernel``: normalised forward scores ``alphas (B, n, L)`` (kept for the backward) and
  ``log Z (B,)``;
* ``_backward_kernel``: walks the sentence backwards with the backward scores in registers and
  writes, as asked, the unary marginals, the pairwise marginals and/or each sentence's expected
  transition counts (the gradient of ``log Z`` with respect to the transitions).

Everything is accumulated in float32 (bf16/fp16 emissions are read and upcast), in log space, with
the same per-position normalisation as the PyTorch path, so results agree with it to float32
rounding. ``-inf`` scores (forbidden labels or transitions) are allowed.

This module imports Triton; :mod:`linear_chain` imports it only when it is handed CUDA tensors, so
importing the library never needs Triton. Triton's interpreter (``TRITON_INTERPRET=1`` set before
this module is imported) runs the same kernels on CPU tensors, which is how the tests check them on
a machine without a GPU.
"""
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

__all__ = ["MAX_LABELS", "supports", "log_partition", "forward_backward", "marginals"]

# One program keeps an (L, L) tile in registers; beyond this the PyTorch path is used.
MAX_LABELS = 128
_FLOAT_TYPES = (torch.float32, torch.bfloat16, torch.float16)


@triton.jit
def _lse_rows(tile, axis: tl.constexpr):
    """log-sum-exp of a 2-D tile along ``axis``; rows of all ``-inf`` give ``-inf``, not NaN."""
    top = tl.max(tile, axis)
    top = tl.where(top == float("-inf"), 0.0, top)
    if axis == 0:
        total = tl.sum(tl.exp(tile - top[None, :]), 0)
    else:
        total = tl.sum(tl.exp(tile - top[:, None]), 1)
    return tl.log(total) + top


@triton.jit
def _lse(vector):
    top = tl.max(vector, 0)
    top = tl.where(top == float("-inf"), 0.0, top)
    return tl.log(tl.sum(tl.exp(vector - top), 0)) + top


@triton.jit
def _lse_tile(tile):
    """log-sum-exp of a whole 2-D tile."""
    top = tl.max(tl.max(tile, 1), 0)
    top = tl.where(top == float("-inf"), 0.0, top)
    return tl.log(tl.sum(tl.sum(tl.exp(tile - top), 1), 0)) + top


@triton.jit
def _normalised(vector):
    """``vector`` shifted so that its maximum is 0, and the shift (0 when nothing is finite)."""
    top = tl.max(vector, 0)
    top = tl.where(top == float("-inf"), 0.0, top)
    return vector - top, top


@triton.jit
def _forward_kernel(
    emissions_ptr, transitions_ptr, start_ptr, end_ptr, lengths_ptr,
    alphas_ptr, log_z_ptr,
    n, num_labels,
    BLOCK_L: tl.constexpr,
):
    sentence = tl.program_id(0)
    length = tl.load(lengths_ptr + sentence)
    labels = tl.arange(0, BLOCK_L)
    real = labels < num_labels
    pair_real = real[:, None] & real[None, :]
    transitions = tl.load(
        transitions_ptr + labels[:, None] * num_labels + labels[None, :], mask=pair_real, other=float("-inf")
    )
    row = sentence.to(tl.int64) * n * num_labels
    log_z = 0.0
    if length > 0:
        emission = tl.load(emissions_ptr + row + labels, mask=real, other=float("-inf")).to(tl.float32)
        alpha = tl.load(start_ptr + labels, mask=real, other=float("-inf")) + emission
        alpha, log_norm = _normalised(alpha)
        tl.store(alphas_ptr + row + labels, alpha, mask=real)
        for position in range(1, length):
            offset = row + position * num_labels
            emission = tl.load(emissions_ptr + offset + labels, mask=real, other=float("-inf")).to(tl.float32)
            step = _lse_rows(alpha[:, None] + transitions, 0) + emission
            alpha, shift = _normalised(step)
            log_norm += shift
            tl.store(alphas_ptr + offset + labels, alpha, mask=real)
        final = alpha + tl.load(end_ptr + labels, mask=real, other=float("-inf"))
        log_z = log_norm + _lse(final)
    tl.store(log_z_ptr + sentence, log_z)


@triton.jit
def _backward_kernel(
    emissions_ptr, transitions_ptr, end_ptr, lengths_ptr, alphas_ptr, scale_ptr,
    unary_ptr, pair_ptr, counts_ptr,
    n, num_labels,
    BLOCK_L: tl.constexpr,
    LOG_SPACE: tl.constexpr,
    WRITE_PAIR: tl.constexpr,
    WRITE_COUNTS: tl.constexpr,
    SCALED: tl.constexpr,
):
    sentence = tl.program_id(0)
    length = tl.load(lengths_ptr + sentence)
    labels = tl.arange(0, BLOCK_L)
    real = labels < num_labels
    pair_real = real[:, None] & real[None, :]
    pair_offsets = labels[:, None] * num_labels + labels[None, :]
    transitions = tl.load(transitions_ptr + pair_offsets, mask=pair_real, other=float("-inf"))
    scale = 1.0
    if SCALED:
        scale = tl.load(scale_ptr + sentence).to(tl.float32)
    row = sentence.to(tl.int64) * n * num_labels
    counts = tl.zeros((BLOCK_L, BLOCK_L), dtype=tl.float32)
    if length > 0:
        beta = tl.load(end_ptr + labels, mask=real, other=float("-inf"))
        for step in range(0, length - 1):
            position = length - 1 - step
            offset = row + position * num_labels
            alpha = tl.load(alphas_ptr + offset + labels, mask=real, other=float("-inf"))
            unary = alpha + beta
            unary = unary - _lse(unary)
            if LOG_SPACE:
                tl.store(unary_ptr + offset + labels, unary, mask=real)
            else:
                tl.store(unary_ptr + offset + labels, tl.exp(unary) * scale, mask=real)
            emission = tl.load(emissions_ptr + offset + labels, mask=real, other=float("-inf")).to(tl.float32)
            # tile[a, c] = T[a, c] + e[i, c] + beta[i, c]: the pairs (i-1, i) and, summed over c,
            # the next backward scores
            tile = transitions + (emission + beta)[None, :]
            if WRITE_PAIR or WRITE_COUNTS:
                previous = tl.load(alphas_ptr + offset - num_labels + labels, mask=real, other=float("-inf"))
                pair = previous[:, None] + tile
                pair = pair - _lse_tile(pair)
                if WRITE_PAIR:
                    pair_offset = sentence.to(tl.int64) * n * num_labels * num_labels
                    pair_offset += position * num_labels * num_labels
                    if LOG_SPACE:
                        tl.store(pair_ptr + pair_offset + pair_offsets, pair, mask=pair_real)
                    else:
                        tl.store(pair_ptr + pair_offset + pair_offsets, tl.exp(pair) * scale, mask=pair_real)
                if WRITE_COUNTS:
                    counts += tl.exp(pair)
            beta, _ = _normalised(_lse_rows(tile, 1))
        alpha = tl.load(alphas_ptr + row + labels, mask=real, other=float("-inf"))
        unary = alpha + beta
        unary = unary - _lse(unary)
        if LOG_SPACE:
            tl.store(unary_ptr + row + labels, unary, mask=real)
        else:
            tl.store(unary_ptr + row + labels, tl.exp(unary) * scale, mask=real)
    if WRITE_COUNTS:
        counts_offset = sentence.to(tl.int64) * num_labels * num_labels
        tl.store(counts_ptr + counts_offset + pair_offsets, counts * scale, mask=pair_real)


def supports(emissions: torch.Tensor) -> bool:
    """Whether the fused kernels serve these emissions ``(B, n, L)``."""
    return emissions.dtype in _FLOAT_TYPES and 0 < emissions.size(-1) <= MAX_LABELS


def _num_warps(block: int, backward: bool = False) -> int:
    """Warps per program. Measured on an H100 (docs/gpu_benchmark.md): the forward pass is one chain of
    dependent steps and wants few warps; the backward pass also writes (L, L) tiles and wants more."""
    if backward:
        return 4 if block <= 16 else 8
    return 1 if block <= 32 else 2 if block <= 64 else 4


def _arguments(emissions, transitions, mask, start, end):
    batch, n, num_labels = emissions.shape
    emissions = emissions.contiguous()
    as_float = dict(dtype=torch.float32, device=emissions.device)
    transitions = transitions.detach().to(**as_float).contiguous()
    start = start.detach().to(**as_float).contiguous()
    end = end.detach().to(**as_float).contiguous()
    lengths = mask.sum(1).to(torch.int32).contiguous()
    block = max(triton.next_power_of_2(num_labels), 2)
    return emissions, transitions, start, end, lengths, block


def _forward(emissions, transitions, start, end, lengths, block):
    batch, n, num_labels = emissions.shape
    alphas = torch.empty(batch, n, num_labels, dtype=torch.float32, device=emissions.device)
    log_z = torch.empty(batch, dtype=torch.float32, device=emissions.device)
    _forward_kernel[(batch,)](
        emissions, transitions, start, end, lengths, alphas, log_z, n, num_labels,
        BLOCK_L=block, num_warps=_num_warps(block),
    )
    return alphas, log_z


def _backward(
    emissions, transitions, end, lengths, alphas, block, *,
    log_space: bool, pairwise: bool, counts: bool, scale: Optional[torch.Tensor] = None,
):
    batch, n, num_labels = emissions.shape
    device = emissions.device
    fill = float("-inf") if log_space else 0.0
    # positions past a sentence's end are never written by the kernel: fill them here
    unary = torch.full((batch, n, num_labels), fill, dtype=torch.float32, device=device)
    pair = (
        torch.full((batch, n, num_labels, num_labels), fill, dtype=torch.float32, device=device)
        if pairwise else unary
    )
    expected = torch.empty(batch, num_labels, num_labels, dtype=torch.float32, device=device) if counts else unary
    _backward_kernel[(batch,)](
        emissions, transitions, end, lengths, alphas, scale if scale is not None else unary,
        unary, pair, expected, n, num_labels,
        BLOCK_L=block, LOG_SPACE=log_space, WRITE_PAIR=pairwise, WRITE_COUNTS=counts,
        SCALED=scale is not None, num_warps=_num_warps(block, backward=True),
    )
    return unary, (pair if pairwise else None), (expected if counts else None)


class _LogPartition(torch.autograd.Function):
    """``log Z`` with a fused forward and a fused backward (the marginals are the gradient)."""

    @staticmethod
    def forward(ctx, emissions, transitions, start, end, mask):
        arguments = _arguments(emissions, transitions, mask, start, end)
        alphas, log_z = _forward(*arguments)
        ctx.save_for_backward(*arguments[:5], alphas)
        ctx.block = arguments[5]
        ctx.emission_dtype = emissions.dtype
        ctx.parameter_dtypes = (transitions.dtype, start.dtype, end.dtype)
        return log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_z):
        emissions, transitions, start, end, lengths, alphas = ctx.saved_tensors
        needs = ctx.needs_input_grad
        scale = grad_log_z.to(torch.float32).contiguous()
        unary, _, counts = _backward(
            emissions, transitions, end, lengths, alphas, ctx.block,
            log_space=False, pairwise=False, counts=needs[1], scale=scale,
        )
        grad_emissions = unary.to(ctx.emission_dtype) if needs[0] else None
        grad_transitions = counts.sum(0).to(ctx.parameter_dtypes[0]) if needs[1] else None
        grad_start = unary[:, 0].sum(0).to(ctx.parameter_dtypes[1]) if needs[2] else None
        grad_end = None
        if needs[3]:
            last = (lengths.long() - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, unary.size(2))
            grad_end = unary.gather(1, last).squeeze(1).sum(0).to(ctx.parameter_dtypes[2])
        return grad_emissions, grad_transitions, grad_start, grad_end, None


def log_partition(emissions, transitions, mask, start, end) -> torch.Tensor:
    """``log Z`` ``(B,)`` in float32, differentiable (once) in every score. Arguments as in
    :func:`linear_chain.log_partition`, already checked, ``start``/``end`` given."""
    return _LogPartition.apply(emissions, transitions, start, end, mask)


def forward_backward(emissions, transitions, mask, start, end) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(log_z (B,), log_unary (B, n, L), log_pairwise (B, n, L, L))`` in float32, as
    :func:`linear_chain.forward_backward`; not differentiable."""
    arguments = _arguments(emissions.detach(), transitions, mask, start, end)
    alphas, log_z = _forward(*arguments)
    emissions, transitions, _, end, lengths, block = arguments
    log_unary, log_pair, _ = _backward(
        emissions, transitions, end, lengths, alphas, block, log_space=True, pairwise=True, counts=False
    )
    return log_z, log_unary, log_pair


def marginals(emissions, transitions, mask, start, end, pairwise: bool = True):
    """``(unary (B, n, L), pairwise (B, n, L, L) or None)`` in float32, as
    :func:`linear_chain.marginals`; not differentiable. ``pairwise=False`` skips the (L, L) output."""
    arguments = _arguments(emissions.detach(), transitions, mask, start, end)
    alphas, _ = _forward(*arguments)
    emissions, transitions, _, end, lengths, block = arguments
    unary, pair, _ = _backward(
        emissions, transitions, end, lengths, alphas, block, log_space=False, pairwise=pairwise, counts=False
    )
    return unary, pair

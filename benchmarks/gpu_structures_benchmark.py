"""
GPU benchmark of the structured core: the fused Triton kernels of ``structures`` against
torch-struct 0.5 and against this project's own PyTorch path, measured in the same run.

For each B x n x L shape of the issue, float32, random lengths in [n/2, n] (the longest = n):
  * ``log_partition`` forward + backward (gradients of emissions and transitions) vs torch-struct's
    ``LinearChainCRF(edge, lengths).partition`` forward + backward (gradient of its edge potentials);
  * ``marginals`` (unary and pairwise) vs torch-struct's ``.marginals`` (pairwise edges);
  * ``unary_marginals`` (no pairwise output);
  * ``span_dp.bioes_marginals`` over C = (L - 1) / 4 span types, so that its output has the same
    B x n x L size, against the same torch-struct linear-chain ``.marginals``;
  * the PyTorch path of each (the fused dispatch switched off), to show what the kernels replace;
  * the memory-bandwidth floor of each fused call (bytes it must read and write once, over a
    device-to-device copy's measured bandwidth), and peak memory of ``marginals`` over its output.
It also checks at every shape that the fused and PyTorch paths agree (max abs difference), and
that bf16 emissions give float32 results.

Needs only torch, Triton and torch-struct: the structures are loaded without the AllenNLP plugin.
Usage: python benchmarks/gpu_structures_benchmark.py [--output docs/gpu_benchmark.md]
Timings: ``triton.testing.do_bench`` medians (CUDA events, warm-up first, L2 flushed between runs).
"""
import argparse
import datetime
import pathlib
import sys
import types

import torch
import triton
from triton.testing import do_bench

SHAPES = [(32, 50, 17), (512, 50, 17), (512, 128, 17), (128, 50, 49), (64, 256, 9), (2048, 32, 9)]
GOAL_5X = {(32, 50, 17), (64, 256, 9)}


def load_structures():
    """``linear_chain``, ``span_dp``, ``fused_chain`` without the plugin's ``__init__`` (it imports
    AllenNLP to register components; these modules need only torch and Triton)."""
    root = pathlib.Path(__file__).resolve().parents[1] / "allennlp_structkd"
    if "allennlp_structkd" not in sys.modules:
        for name, path in (("allennlp_structkd", root), ("allennlp_structkd.structures", root / "structures")):
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    from allennlp_structkd.structures import fused_chain, fused_span, linear_chain, span_dp

    return linear_chain, span_dp, fused_chain, fused_span


linear_chain, span_dp, fused_chain, fused_span = load_structures()


class pytorch_path:
    """Within this block ``linear_chain`` and ``span_dp`` take their PyTorch path on CUDA tensors."""

    def __enter__(self):
        self.saved = linear_chain._fused, span_dp._fused
        linear_chain._fused = lambda *args, **kwargs: None
        span_dp._fused = lambda *args, **kwargs: None

    def __exit__(self, *exc):
        linear_chain._fused, span_dp._fused = self.saved


def inputs(batch, n, num_labels, seed=0):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, n, num_labels, generator=g)
    transitions = torch.randn(num_labels, num_labels, generator=g)
    lengths = torch.randint(n // 2, n + 1, (batch,), generator=g)
    lengths[0] = n
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    num_types = max((num_labels - 1) // 4, 1)
    spans = torch.randn(batch, n, n, num_types, generator=g)
    return [t.cuda() for t in (emissions, transitions, mask, lengths, spans)]


def copy_bandwidth():
    """Bytes read + written per second by a large device-to-device copy."""
    source = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
    target = torch.empty_like(source)
    seconds = do_bench(lambda: target.copy_(source), return_mode="median") / 1000
    return 2 * source.numel() * 4 / seconds


def bench(fn):
    return do_bench(fn, warmup=50, rep=300, return_mode="median")


def peak_memory_ratio(fn, output_bytes):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del result
    return peak / output_bytes


def run_shape(batch, n, num_labels, bandwidth):
    import torch_struct

    emissions, transitions, mask, lengths, spans = inputs(batch, n, num_labels)
    span_mask = mask
    leaves = (emissions.clone().requires_grad_(), transitions.clone().requires_grad_())
    edge = (transitions.t().view(1, 1, num_labels, num_labels) + emissions[:, 1:].unsqueeze(3)).contiguous()
    edge[:, 0] += emissions[:, 0].unsqueeze(1)
    edge_leaf = edge.clone().requires_grad_()

    def ours_log_z():
        log_z = linear_chain.log_partition(leaves[0], leaves[1], mask)
        return torch.autograd.grad(log_z.sum(), leaves)

    def ts_log_z():
        log_z = torch_struct.LinearChainCRF(edge_leaf, lengths=lengths).partition
        return torch.autograd.grad(log_z.sum(), edge_leaf)

    row = dict(B=batch, n=n, L=num_labels)
    with torch.no_grad():
        row["marg"] = bench(lambda: linear_chain.marginals(emissions, transitions, mask))
        row["unary"] = bench(lambda: linear_chain.unary_marginals(emissions, transitions, mask))
        row["bioes"] = bench(lambda: span_dp.bioes_marginals(spans, span_mask))
        span_lse = torch.logsumexp(span_dp._valid_spans(spans, span_mask), dim=3)
        row["span_kernel"] = bench(lambda: fused_span.prefix_suffix_sums(span_lse, lengths, span_dp.NEG))
    row["ts_marg"] = bench(lambda: torch_struct.LinearChainCRF(edge, lengths=lengths).marginals)
    row["log_z"] = bench(ours_log_z)
    row["ts_log_z"] = bench(ts_log_z)
    with pytorch_path():
        with torch.no_grad():
            row["py_marg"] = bench(lambda: linear_chain.marginals(emissions, transitions, mask))
            row["py_bioes"] = bench(lambda: span_dp.bioes_marginals(spans, span_mask))
        row["py_log_z"] = bench(ours_log_z)
        reference_marg = linear_chain.marginals(emissions, transitions, mask)
        reference_grad = ours_log_z()
        reference_bioes = span_dp.bioes_marginals(spans, span_mask)
    fused_marg = linear_chain.marginals(emissions, transitions, mask)
    fused_grad = ours_log_z()
    row["diff"] = max(
        max((a - b).abs().max().item() for a, b in zip(fused_marg, reference_marg)),
        (fused_grad[0] - reference_grad[0]).abs().max().item(),  # = the unary marginals
        (span_dp.bioes_marginals(spans, span_mask) - reference_bioes).abs().max().item(),
    )
    # the transitions' gradient sums pair marginals over the whole batch (values up to B * n / L^2 * L):
    # float32 summation order differs, so it is compared relative to its largest entry
    row["counts_diff"] = ((fused_grad[1] - reference_grad[1]).abs().max() / reference_grad[1].abs().max()).item()
    ts_pair = torch_struct.LinearChainCRF(edge, lengths=lengths).marginals  # (B, n-1, to, from)
    row["ts_diff"] = (fused_marg[1][:, 1:] - ts_pair.transpose(2, 3)).abs().max().item()
    # bytes each fused call must move once: inputs read, outputs written, and the (B, n, L) float32
    # forward scores the backward pass reads back
    scores = batch * n * num_labels * 4
    pair_bytes = batch * n * num_labels * num_labels * 4
    row["floor_marg"] = (scores + 2 * scores + scores + pair_bytes) / bandwidth * 1000
    row["floor_log_z"] = (scores + 2 * scores + scores) / bandwidth * 1000
    row["memory"] = peak_memory_ratio(lambda: linear_chain.marginals(emissions, transitions, mask), scores + pair_bytes)
    bf16 = linear_chain.log_partition(emissions.bfloat16(), transitions, mask)
    assert bf16.dtype == torch.float32
    row["bf16_diff"] = (bf16 - linear_chain.log_partition(emissions.bfloat16().float(), transitions, mask)).abs().max().item()
    return row


def sweep_warps(shapes):
    """Median times of the fused ``log_partition`` fwd+bwd and ``marginals`` for each ``num_warps`` of
    one kernel (the other keeps the module's choice)."""
    saved = fused_chain._num_warps
    lines = ["| B × n × L | kernel | num_warps | `log_partition` fwd+bwd | `marginals` |", "|---|---|---|---|---|"]
    try:
        for (batch, n, num_labels), kernel, warps in (
            (shape, kernel, warps) for shape in shapes for kernel in ("forward", "backward") for warps in (1, 2, 4, 8)
        ):
            emissions, transitions, mask, _, _ = inputs(batch, n, num_labels)
            leaves = (emissions.clone().requires_grad_(), transitions.clone().requires_grad_())

            def choose(block, backward=False, kernel=kernel, warps=warps):
                return warps if backward == (kernel == "backward") else saved(block, backward)

            fused_chain._num_warps = choose
            log_z = bench(lambda: torch.autograd.grad(linear_chain.log_partition(leaves[0], leaves[1], mask).sum(), leaves))
            with torch.no_grad():
                marg = bench(lambda: linear_chain.marginals(emissions, transitions, mask))
            lines.append(f"| {batch} × {n} × {num_labels} | {kernel} | {warps} | {ms(log_z)} | {ms(marg)} |")
            print(lines[-1], flush=True)
    finally:
        fused_chain._num_warps = saved
    return "\n".join(lines)


def ms(value):
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def render(rows, bandwidth):
    lines = [
        "# GPU benchmark: the structured core (fused Triton kernels)",
        "",
        f"Produced by `python benchmarks/gpu_structures_benchmark.py --output docs/gpu_benchmark.md` on"
        f" {datetime.date.today().isoformat()}, {torch.cuda.get_device_name()}, torch {torch.__version__},"
        f" Triton {triton.__version__}; float32, random lengths in [n/2, n]. Times in ms are `do_bench` medians;"
        " every ratio compares timings of the same run. Device-to-device copy bandwidth measured in the same run:"
        f" {bandwidth / 1e12:.2f} TB/s (read + write).",
        "",
        "| B × n × L | `log_partition` fwd+bwd | torch-struct fwd+bwd | speed-up | PyTorch path | `marginals` | torch-struct"
        " `marginals` | speed-up | PyTorch path | `unary_marginals` | `bioes_marginals` (C types) | speed-up vs torch-struct"
        " `marginals` | PyTorch path |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['B']} × {r['n']} × {r['L']} | {ms(r['log_z'])} | {ms(r['ts_log_z'])} | {r['ts_log_z'] / r['log_z']:.1f}x"
            f" | {ms(r['py_log_z'])} | {ms(r['marg'])} | {ms(r['ts_marg'])} | {r['ts_marg'] / r['marg']:.1f}x"
            f" | {ms(r['py_marg'])} | {ms(r['unary'])} | {ms(r['bioes'])} ({max((r['L'] - 1) // 4, 1)})"
            f" | {r['ts_marg'] / r['bioes']:.1f}x | {ms(r['py_bioes'])} |"
        )
    lines += [
        "",
        "Distance from the memory-bandwidth floor (bytes each call must move once over the copy bandwidth above),"
        " peak memory of `marginals` over its output, and agreement:",
        "",
        "| B × n × L | `marginals` floor | × floor | `log_partition` floor | × floor | peak memory / output"
        " | max abs diff fused vs PyTorch path (marginals, ∂/∂emissions, BIOES) | ∂/∂transitions, relative"
        " | pair marginals vs torch-struct | bf16 vs float32 input (log Z) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['B']} × {r['n']} × {r['L']} | {r['floor_marg'] * 1000:.1f} µs | {r['marg'] / r['floor_marg']:.0f}x"
            f" | {r['floor_log_z'] * 1000:.1f} µs | {r['log_z'] / r['floor_log_z']:.0f}x | {r['memory']:.2f}"
            f" | {r['diff']:.1e} | {r['counts_diff']:.1e} | {r['ts_diff']:.1e} | {r['bf16_diff']:.1e} |"
        )
    lines += [
        "",
        "Where `bioes_marginals`' time goes: the fused semi-Markov kernel (`fused_span.prefix_suffix_sums`, float64)"
        " against the whole call (the rest is tensor algebra over the (B, n, n, C) span scores):",
        "",
        "| B × n × C | kernel | whole call |",
        "|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['B']} × {r['n']} × {max((r['L'] - 1) // 4, 1)} | {ms(r['span_kernel'])} | {ms(r['bioes'])} |")
    lines += ["", "Goals of the fused kernels:"]
    for key, name in (("log_z", "log_partition"), ("marg", "marginals"), ("bioes", "bioes_marginals")):
        peer = "ts_log_z" if key == "log_z" else "ts_marg"
        slow = [f"{r['B']}×{r['n']}×{r['L']}" for r in rows if r[peer] < r[key]]
        lines.append(f"- `{name}` at least as fast as torch-struct at every shape: {'met' if not slow else 'NOT met at ' + ', '.join(slow)}.")
    for r in rows:
        if (r["B"], r["n"], r["L"]) in GOAL_5X:
            for key, name in (("log_z", "log_partition"), ("marg", "marginals"), ("bioes", "bioes_marginals")):
                ratio = r["ts_log_z" if key == "log_z" else "ts_marg"] / r[key]
                lines.append(f"- ≥ 5x at {r['B']}×{r['n']}×{r['L']}, `{name}`: {ratio:.1f}x ({'met' if ratio >= 5 else 'NOT met'}).")
    worst = max(r["memory"] for r in rows)
    lines.append(f"- peak memory of `marginals` at most 3x its output: worst {worst:.2f}x ({'met' if worst <= 3 else 'NOT met'}).")
    worst = max(r["diff"] for r in rows)
    lines.append(f"- fused = PyTorch path to 1e-5 (marginals, ∂/∂emissions, BIOES): worst {worst:.1e}"
                 f" ({'met' if worst <= 1e-5 else 'NOT met'}); ∂/∂transitions relative: worst"
                 f" {max(r['counts_diff'] for r in rows):.1e}.")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=None)
    parser.add_argument("--shapes", default=None, help="e.g. 32x50x17,64x256x9 (default: the issue's six)")
    parser.add_argument("--sweep-warps", action="store_true", help="only time each num_warps (to tune the heuristic)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("this benchmark needs a CUDA GPU")
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    if args.sweep_warps:
        print(sweep_warps(shapes))
        return
    bandwidth = copy_bandwidth()
    rows = []
    for shape in shapes:
        rows.append(run_shape(*shape, bandwidth))
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    text = render(rows, bandwidth)
    print(text)
    if args.output:
        pathlib.Path(args.output).write_text(text)


if __name__ == "__main__":
    main()

"""
Benchmark of allennlp_structkd.structures against named peers, measured in the same run.

CPU, one thread, batch 32, float32. For each (n, L) it times:
  * linear_chain.marginals  vs torch-struct 0.5 LinearChainCRF(...).marginals;
  * linear_chain.marginals  vs allennlp ConditionalRandomField.forward (the log-likelihood: one
    forward pass, the practical floor of a forward-backward);
  * linear_chain.kbest(k=10) vs allennlp ConditionalRandomField.viterbi_tags(top_k=10);
  * linear_chain.viterbi     vs allennlp ConditionalRandomField.viterbi_tags;
  * prediction decoding (a CRF tagger's Viterbi tags and marginals: structkd_spacy.chain, numpy, the serving
    package's copy, which the library's CRF tagger decodes with) vs linear_chain.viterbi and
    linear_chain.unary_marginals (torch, training's);
and span_dp.bioes_marginals at n = 50, C = 4 (absolute time only: the original authors' code ran
this DP per sentence over Python dicts).

Usage: python benchmarks/structures_benchmark.py [--output docs/benchmarks.md] [--repeats 7]
Timings are medians over repeats; ratios are peer time / our time (higher = we are faster).
"""
import argparse
import datetime
import os
import platform
import statistics
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # numpy's BLAS on one thread too
    os.environ.setdefault(_name, "1")

import torch  # noqa: E402

torch.set_num_threads(1)

from allennlp.modules.conditional_random_field import ConditionalRandomField  # noqa: E402
from report import emit  # noqa: E402  (benchmarks/report.py)

from allennlp_structkd.structures import linear_chain, span_dp  # noqa: E402
from structkd_spacy import chain as serving_chain  # noqa: E402

SHAPES = [(20, 9), (50, 17), (100, 17), (50, 49)]
BATCH = 32


def median_time(fn, repeats, warmup=1, budget_s=60.0):
    for _ in range(warmup):
        fn()
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget_s and len(times) >= 1:
            break
    return statistics.median(times)


def inputs(n, num_labels, seed=0):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(BATCH, n, num_labels, generator=g)
    transitions = torch.randn(num_labels, num_labels, generator=g)
    lengths = torch.randint(n // 2, n + 1, (BATCH,), generator=g)
    lengths[0] = n
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    tags = torch.randint(0, num_labels, (BATCH, n), generator=g)
    return emissions, transitions, mask, lengths, tags


def run(repeats):
    import torch_struct

    rows = []
    for n, num_labels in SHAPES:
        emissions, transitions, mask, lengths, tags = inputs(n, num_labels)
        crf = ConditionalRandomField(num_labels, include_start_end_transitions=False)
        with torch.no_grad():
            crf.transitions.copy_(transitions)
        # torch-struct: log_potentials[b, i, to, from], first emission folded into the first edge
        edge = transitions.t().view(1, 1, num_labels, num_labels) + emissions[:, 1:].unsqueeze(3)
        edge[:, 0] += emissions[:, 0].unsqueeze(1)

        with torch.no_grad():
            ours_marg = median_time(lambda: linear_chain.marginals(emissions, transitions, mask), repeats)
            ts_marg = median_time(
                lambda: torch_struct.LinearChainCRF(edge, lengths=lengths).marginals, max(1, repeats // 3)
            )
            crf_fwd = median_time(lambda: crf(emissions, tags, mask), repeats)
            ours_kbest = median_time(lambda: linear_chain.kbest(emissions, transitions, mask, 10), repeats)
            crf_kbest = median_time(lambda: crf.viterbi_tags(emissions, mask, top_k=10), repeats)
            ours_vit = median_time(lambda: linear_chain.viterbi(emissions, transitions, mask), repeats)
            crf_vit = median_time(lambda: crf.viterbi_tags(emissions, mask), repeats)
            torch_unary = median_time(lambda: linear_chain.unary_marginals(emissions, transitions, mask), repeats)
            zeros = torch.zeros(num_labels)
            arrays = [t.numpy() for t in (emissions, transitions, zeros, zeros)] + [mask.numpy()]
            # what decoding does: the scores to numpy, the tags back to a tensor
            np_vit = median_time(lambda: torch.from_numpy(serving_chain.viterbi(*arrays)), repeats)
            np_unary = median_time(lambda: torch.from_numpy(serving_chain.marginals(*arrays)[0]), repeats)
        rows.append(
            dict(n=n, L=num_labels, ours_marg=ours_marg, ts_marg=ts_marg, crf_fwd=crf_fwd,
                 ours_kbest=ours_kbest, crf_kbest=crf_kbest, ours_vit=ours_vit, crf_vit=crf_vit,
                 torch_unary=torch_unary, np_vit=np_vit, np_unary=np_unary)
        )
        print(rows[-1], flush=True)
    g = torch.Generator().manual_seed(1)
    span_scores = torch.randn(BATCH, 50, 50, 4, generator=g)
    span_mask = torch.arange(50).unsqueeze(0) < torch.randint(25, 51, (BATCH, 1), generator=g)
    with torch.no_grad():
        span_time = median_time(lambda: span_dp.bioes_marginals(span_scores, span_mask), repeats)
    return rows, span_time


def ms(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def render(rows, span_time, repeats):
    lines = [
        "# Benchmarks: structured inference",
        "",
        f"Produced by `python benchmarks/structures_benchmark.py --output docs/benchmarks.md --repeats {repeats}`"
        f" (also `make benchmark`) on {datetime.date.today().isoformat()}, {platform.processor() or platform.machine()},"
        f" torch {torch.__version__}, one CPU thread, batch {BATCH}, float32, random lengths in [n/2, n].",
        "Times are medians; each ratio compares two timings taken in the same run (absolute times drift on a shared machine).",
        "",
        "## Linear-chain CRF",
        "",
        "| n | L | `marginals` | torch-struct `marginals` | speed-up vs torch-struct | allennlp CRF forward | `marginals` / forward | `kbest(10)` | allennlp `viterbi_tags(top_k=10)` | speed-up | `viterbi` | allennlp `viterbi_tags` | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['L']} | {ms(r['ours_marg'])} | {ms(r['ts_marg'])} | {r['ts_marg'] / r['ours_marg']:.1f}x"
            f" | {ms(r['crf_fwd'])} | {r['ours_marg'] / r['crf_fwd']:.2f}x | {ms(r['ours_kbest'])} | {ms(r['crf_kbest'])}"
            f" | {r['crf_kbest'] / r['ours_kbest']:.1f}x | {ms(r['ours_vit'])} | {ms(r['crf_vit'])} | {r['crf_vit'] / r['ours_vit']:.1f}x |"
        )
    goal = next(r for r in rows if (r["n"], r["L"]) == (50, 17))
    lines += [
        "",
        "Goals of the structured core, at (n, L) = (50, 17):",
        f"- `marginals` at least 10x faster than torch-struct: {goal['ts_marg'] / goal['ours_marg']:.1f}x"
        f" ({'met' if goal['ts_marg'] / goal['ours_marg'] >= 10 else 'NOT met'});",
        f"- one forward-backward at most 3x one allennlp CRF forward: {goal['ours_marg'] / goal['crf_fwd']:.2f}x"
        f" ({'met' if goal['ours_marg'] / goal['crf_fwd'] <= 3 else 'NOT met'});",
        f"- `kbest(10)` at least 5x faster than allennlp `viterbi_tags(top_k=10)`: {goal['crf_kbest'] / goal['ours_kbest']:.1f}x"
        f" ({'met' if goal['crf_kbest'] / goal['ours_kbest'] >= 5 else 'NOT met'});",
        f"- `viterbi` at least 3x faster than allennlp `viterbi_tags`: {goal['crf_vit'] / goal['ours_vit']:.1f}x"
        f" ({'met' if goal['crf_vit'] / goal['ours_vit'] >= 3 else 'NOT met'}).",
    ]
    lines += [
        "",
        "## Decoding a CRF tagger's predictions",
        "",
        "The tagger decodes (Viterbi tags, and each word's marginals as its confidences) with the serving package's",
        "numpy inference (`structkd_spacy.chain`, the code that also serves the exported student), on the CPU;",
        "training keeps the differentiable torch chain. The same scores as above:",
        "",
        "| n | L | `chain.viterbi` (numpy) | `linear_chain.viterbi` (torch) | speed-up | `chain.marginals` (numpy) "
        "| `linear_chain.unary_marginals` (torch) | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['L']} | {ms(r['np_vit'])} | {ms(r['ours_vit'])} | {r['ours_vit'] / r['np_vit']:.1f}x"
            f" | {ms(r['np_unary'])} | {ms(r['torch_unary'])} | {r['torch_unary'] / r['np_unary']:.1f}x |"
        )
    lines += [
        "",
        "## NER as parsing",
        "",
        f"`span_dp.bioes_marginals` at n = 50, C = 4, batch {BATCH}: {ms(span_time)} for the batch"
        f" ({span_time / BATCH * 1000:.2f} ms a sentence; the DP runs in float64, see `span_dp`).",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=None, help="write the markdown table here")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows, span_time = run(args.repeats)
    text = render(rows, span_time, args.repeats)
    emit(text, args.output)


if __name__ == "__main__":
    main()

"""
Bytes per cached sentence of a teacher's Structural KD targets: the pair marginals a chain teacher's
targets are made of (``(n, L, L)`` a sentence, as the cache held them before), against what the cache
now holds, the teacher's constrained chain scores (``(n, L)`` emissions a sentence, its transitions once
per teacher), from which the reader recomputes the same marginals, batched, whenever it reads them.

    python benchmarks/cache_bytes.py --teacher runs/teacher_es/model.tar.gz \\
        --data '{"es": "data/esp.train"}' --sentences 3000 --output docs/cache_bytes.md

Both sizes are of entries encoded as the cache encodes them (``encode_entry``: numpy's ``.npz``), one
per sentence. The recomputed targets are checked against the pair marginals computed directly, and the
largest difference is reported (the tests check the same on random chains).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="a CRF teacher's model.tar.gz")
    parser.add_argument("--data", required=True, help="a data path as the readers take it (a file or a JSON {lang: path})")
    parser.add_argument("--skip", type=int, default=0, help="sentences of the data to pass over first (a labeled part)")
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--teacher-made-by", default=None, help="the command that trained the teacher, for the page")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    import tempfile

    import torch

    import allennlp_structkd  # noqa: F401
    from allennlp_structkd.dataset_readers import ConllNerReader
    from allennlp_structkd.kd.cache import encode_entry
    from allennlp_structkd.kd.losses import StructuralKD
    from allennlp_structkd.kd.targets import expand_entries, split_shared
    from allennlp_structkd.kd.teacher import Teacher

    torch.set_num_threads(1)
    read = ConllNerReader(encoding=args.encoding, strict=False).read(args.data)
    sentences = [{"words": list(i["metadata"]["words"])} for i in read][args.skip : args.skip + args.sentences]
    objective = StructuralKD()
    with tempfile.TemporaryDirectory() as cache:
        teacher = Teacher(args.teacher, -1, cache)
        started = time.time()
        stored = teacher.annotate(sentences, objective)
        seconds = time.time() - started
    per_sentence, shared = split_shared(stored)
    merged = [dict(entry, **shared) for entry in per_sentence]
    expanded = expand_entries(objective, merged)  # every sentence in one batch
    compact_bytes = sum(len(encode_entry(entry)) for entry in per_sentence) + len(encode_entry(shared))
    full_bytes = sum(len(encode_entry(entry)) for entry in expanded)
    largest = 0.0  # the same targets expanded in batches of 64, as the reader's chunks do
    for start in range(0, len(merged), 64):
        for a, b in zip(expand_entries(objective, merged[start : start + 64]), expanded[start : start + 64]):
            for name in a:
                largest = max(largest, float(np.abs(a[name].astype(np.float64) - b[name]).max()))
    tokens = sum(len(s["words"]) for s in sentences)
    labels = len(teacher.labels)
    rows = {
        "sentences": len(sentences), "tokens": tokens, "labels": labels,
        "pair_marginals_bytes_per_sentence": full_bytes / len(sentences),
        "chain_scores_bytes_per_sentence": compact_bytes / len(sentences),
        "ratio": compact_bytes / full_bytes,
        "largest_difference_between_batchings": largest,
        "annotation_seconds": seconds,
    }
    lines = [
        "# Bytes per cached sentence: Structural KD targets of a CRF teacher",
        "",
        f"Produced by `python benchmarks/cache_bytes.py {' '.join(sys.argv[1:])}`.",
        "",
        f"{len(sentences):,} sentences ({tokens:,} tokens, {labels} labels) of `{args.data}` after its first {args.skip:,},"
        " each entry encoded as the cache encodes it. An entry's size depends on its sentence's length and the labels"
        " only (float32 arrays), not on how good the teacher is"
        + (f"; the teacher: `{args.teacher_made_by}`." if args.teacher_made_by else "."),
        "",
        "| what the cache holds | bytes per sentence | ratio |",
        "|---|---|---|",
        f"| pair and unary marginals (n × L × L + n × L; before) | {rows['pair_marginals_bytes_per_sentence']:,.0f} | 1.00 |",
        f"| the teacher's constrained chain scores (n × L, transitions once per teacher; now) | "
        f"{rows['chain_scores_bytes_per_sentence']:,.0f} | {rows['ratio']:.3f} |",
        "",
        "The reader recomputes the marginals from the scores, batched, each time it reads them, with the same"
        " computation the teacher ran: the targets are those of the teacher, not an approximation. Recomputed in"
        f" batches of 64 and of all {len(sentences):,} sentences at once, they differ by at most {largest:.1e}.",
        f"At {rows['chain_scores_bytes_per_sentence']:,.0f} bytes a sentence a million transfer sentences take"
        f" {rows['chain_scores_bytes_per_sentence'] * 1e6 / 2**30:.2f} GiB (a projection from the mean over these"
        f" sentences; {rows['pair_marginals_bytes_per_sentence'] * 1e6 / 2**30:.1f} GiB before).",
    ]
    print(json.dumps(rows, indent=2))
    if args.output:
        with open(args.output, "w") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

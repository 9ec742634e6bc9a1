"""
How sharp are a teacher's soft targets? Reads the teacher-output caches a suite wrote (one SQLite file per
teacher archive, see ``allennlp_structkd.kd.cache``) and reports, per teacher and per KD objective, the
per-token distribution the student is trained towards: its mean largest probability, the share of tokens
whose largest probability exceeds 0.99, and its mean entropy.

A teacher whose targets are (almost) one-hot on the student's training sentences gives the student (almost)
the gold labels again: the diagnosis of suite ``strong_teachers``, where the teachers annotate the very
sentences they were trained on.

    python benchmarks/teacher_sharpness.py --cache runs/experiments/strong_teachers/cache \\
        --teacher es=runs/experiments/headline/teacher_es__frozen_e5___BiLSTM_CRF/seed_1/model.tar.gz \\
        --teacher nl=runs/experiments/headline/teacher_nl__frozen_e5___BiLSTM_CRF/seed_1/model.tar.gz \\
        --output docs/teacher_sharpness.md
"""
import argparse
import os
import sys
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from allennlp_structkd.kd.cache import cache_file_name, file_sha256, read_entries  # noqa: E402
from allennlp_structkd.kd.targets import expand_entries  # noqa: E402

# the per-token distribution each objective's cached entry holds (Top-K entries hold sequences: left out)
TOKEN_TARGETS = {"StructuralKD": "teacher_unary", "PosteriorKD": "teacher_unary", "EmissionKD": "teacher_probs",
                 "TokenKD": "teacher_probs"}


def objective_of(signature: str):
    """The Structural KD objective a cache signature names (``StructuralKD-v2-T1-local-scores``)."""
    from allennlp_structkd.kd.losses import StructuralKD

    _, _, temperature, mode = signature.split("-")[:4]
    return StructuralKD(float(temperature[1:]), mode)


def sharpness(path: str) -> Dict[str, Dict[str, float]]:
    """Objective signature -> statistics of its per-token target distributions, over every cached sentence."""
    largest: Dict[str, List[np.ndarray]] = {}
    entropy: Dict[str, List[np.ndarray]] = {}
    entries = list(read_entries(path))
    shared = {key.split("|", 1)[0]: entry for key, entry in entries if key.endswith("|shared")}
    for key, entry in entries:
        signature = key.split("|", 1)[0]
        field = TOKEN_TARGETS.get(signature.split("-", 1)[0])
        if field is None or key.endswith("|shared"):
            continue
        if "teacher_emissions" in entry:  # Structural KD's stored form: the teacher's chain scores, expanded as training does
            entry = expand_entries(objective_of(signature), [dict(entry, **shared.get(signature, {}))])[0]
        probs = np.asarray(entry[field], dtype=np.float64)
        largest.setdefault(signature, []).append(probs.max(-1))
        entropy.setdefault(signature, []).append(-(probs * np.log(np.clip(probs, 1e-300, None))).sum(-1))
    table = {}
    for signature in sorted(largest):
        top, ent = np.concatenate(largest[signature]), np.concatenate(entropy[signature])
        table[signature] = {"sentences": len(largest[signature]), "tokens": len(top), "mean_max": float(top.mean()),
                            "share_over_0.99": float((top > 0.99).mean()), "entropy": float(ent.mean())}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, action="append",
                        help="a teacher-output cache folder (a suite's STRUCTKD_CACHE); may be repeated")
    parser.add_argument("--teacher", action="append", default=[], metavar="NAME=ARCHIVE",
                        help="names a cache file by the teacher archive it belongs to")
    parser.add_argument("--made-by", action="append", default=[], metavar="COMMAND",
                        help="the command that filled a cache, listed on the page (may be repeated)")
    parser.add_argument("--output", help="also write the table (markdown) here")
    args = parser.parse_args()
    names = {}
    for item in args.teacher:
        name, _, archive = item.partition("=")
        if not archive or not os.path.isfile(archive):
            parser.error(f"--teacher wants NAME=ARCHIVE with an existing archive, got {item!r}")
        names[cache_file_name(file_sha256(archive))] = name
    files = [(cache, f) for cache in args.cache for f in sorted(os.listdir(cache)) if f.endswith(".sqlite")]
    for cache in args.cache:
        if not any(folder == cache for folder, _ in files):
            parser.error(f"no teacher-output cache (*.sqlite) in {cache}")
    lines = ["# How sharp are the teachers' soft targets?", "",
             "Produced by `python benchmarks/teacher_sharpness.py "
             + " ".join(f"--cache {cache}" for cache in args.cache) + " "
             + " ".join(f"--teacher {t}" for t in args.teacher) + "`. Every sentence each cache holds: the "
             "KD students' training sentences, annotated by each teacher. Per token, the distribution the student is "
             "trained towards: Struct. KD and Posterior KD, the teacher CRF's marginals P_t(y_i); Emission KD, the "
             "softmax of the teacher's emission scores.", "",
             "| cache | teacher | objective | sentences | tokens | mean largest probability | tokens with largest > 0.99 "
             "| mean entropy (nats) |", "|---|---|---|---|---|---|---|---|"]
    for cache, file in files:
        teacher = names.get(file, file)
        for signature, row in sharpness(os.path.join(cache, file)).items():
            lines.append(f"| {cache} | {teacher} | {signature} | {row['sentences']:,} | {row['tokens']:,} | {row['mean_max']:.4f} "
                         f"| {100 * row['share_over_0.99']:.1f}% | {row['entropy']:.4f} |")
    if args.made_by:
        lines += ["", "The caches were filled by:", ""] + [f"- `{command}`" for command in args.made_by]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output + ".tmp", "w") as handle:
            handle.write(text)
        os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()

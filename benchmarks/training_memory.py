"""
Peak memory of training a Structural KD student (Case 1a, ``struct_kd_case1a.jsonnet``) as the transfer
set grows: the same command with N transfer sentences for each N of ``--sizes``, once with the data
loader holding part of the data (``max_instances_in_memory``, the teacher reader's ``mix_sources``) and,
with ``--modes lazy eager``, once holding everything (AllenNLP's default).

    python benchmarks/training_memory.py --data ../shared/data/conll2002 --work /tmp/memory \\
        --sizes 10000 100000 --output docs/training_memory.md

The data: the first ``--labeled`` sentences of ``esp.train`` and ``ned.train`` are the labeled part (the
teachers learn them too, `--teacher-epochs`, one by default: their quality does not matter for memory); the transfer text is the words
of every training sentence of both files, repeated in order until each language has N/2 lines (a
*synthetic* transfer set: repetition of real sentences, which the page says). The teachers' targets are
written first by ``python -m allennlp_structkd.annotate`` (a repeated sentence is looked up, not
annotated again), so the measured process reads, batches and trains: one epoch, the dev data the first
``--dev`` sentences of each dev split. Peak memory is the resident set of the ``allennlp train`` process
(``getrusage(RUSAGE_CHILDREN)`` of a wrapper that runs only it), in MiB.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "training_configs", "struct_kd_case1a.jsonnet")
WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def conll_sentences(path: str) -> List[str]:
    """The blocks of a CoNLL column file (``-DOCSTART-`` dropped), each with its trailing blank line."""
    with open(path, encoding="utf-8") as handle:
        blocks = [b.strip("\n") for b in handle.read().split("\n\n")]
    return [b + "\n\n" for b in blocks if b and not b.startswith("-DOCSTART-")]


def words_of(block: str) -> str:
    return " ".join(line.split()[0] for line in block.splitlines() if line.strip())


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    return path


def run(command: List[str], env: Dict[str, str], log: str) -> float:
    started = time.time()
    with open(log, "w") as handle:
        result = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"{' '.join(command[:6])} ... failed (exit {result.returncode}); its log: {log}")
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder with esp.train, esp.testa, ned.train, ned.testa")
    parser.add_argument("--work", required=True, help="a new scratch folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--modes", nargs="+", choices=("lazy", "eager"), default=["lazy"])
    parser.add_argument("--in-memory", type=int, default=2000, help="max_instances_in_memory of the lazy mode")
    parser.add_argument("--shuffle-buffer", type=int, default=0,
                        help="the lazy mode's shuffle_buffer (sentences read in random order within this window; 0: none)")
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--dev", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--epochs", type=int, default=1, help="the students' epochs (1: a memory measurement only)")
    parser.add_argument("--teacher-epochs", type=int, default=1,
                        help="the teachers' epochs (1: their quality does not matter for memory; more to compare the modes' F1)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if os.path.exists(args.work):
        raise SystemExit(f"{args.work} exists: give a new --work folder")
    if min(args.sizes) < 2:
        parser.error("--sizes must be at least 2 (half a language)")
    bin_dir = os.path.dirname(sys.executable)
    allennlp = os.path.join(bin_dir, "allennlp")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGGING_", "TEACHER_", "STRUCTKD_"))}
    env.update(STRUCTKD_SEED=str(args.seed), STRUCTKD_CACHE=os.path.join(args.work, "cache"), STRUCTKD_STRICT="false",
               STRUCTKD_TEACHER_EPOCHS=str(args.teacher_epochs), STRUCTKD_EPOCHS=str(args.epochs),
               TOKENIZERS_PARALLELISM="false")

    files = {"es": ("esp.train", "esp.testa"), "nl": ("ned.train", "ned.testa")}
    labeled, dev, pool = {}, {}, {}
    for lang, (train_name, dev_name) in files.items():
        train = conll_sentences(os.path.join(args.data, train_name))
        labeled[lang] = write(os.path.join(args.work, "data", f"{lang}.labeled"), "".join(train[: args.labeled]))
        dev[lang] = write(os.path.join(args.work, "data", f"{lang}.dev"),
                          "".join(conll_sentences(os.path.join(args.data, dev_name))[: args.dev]))
        pool[lang] = [words_of(block) for block in train]

    teachers = {}
    for lang in files:  # one epoch on the labeled part: any CRF teacher has targets of the same size
        folder = os.path.join(args.work, f"teacher_{lang}")
        run([allennlp, "train", os.path.join(REPO, "training_configs", "teachers", f"crf_tagger_{lang}.jsonnet"), "-s", folder,
             "--include-package", "allennlp_structkd"],
            dict(env, **{f"TAGGING_TRAIN_{lang.upper()}": labeled[lang], f"TAGGING_DEV_{lang.upper()}": dev[lang]}),
            folder + ".log")
        teachers[f"TEACHER_{lang.upper()}"] = os.path.join(folder, "model.tar.gz")

    rows = []
    for size in args.sizes:
        transfer = {lang: write(os.path.join(args.work, "data", f"{lang}.transfer_{size}.txt"),
                                "".join(line + "\n" for line in itertools.islice(itertools.cycle(pool[lang]), size // 2)))
                    for lang in files}
        run_env = dict(env, **teachers, TAGGING_TRAIN=json.dumps({"labeled": labeled, "unlabeled": transfer}),
                       TAGGING_DEV=json.dumps(dev))
        annotate_seconds = run([sys.executable, "-m", "allennlp_structkd.annotate", CONFIG, "--workers", "1"], run_env,
                               os.path.join(args.work, f"annotate_{size}.log"))
        for mode in args.modes:
            overrides: Dict[str, object] = {"trainer.num_epochs": args.epochs}
            if mode == "lazy":
                overrides.update({"data_loader.max_instances_in_memory": args.in_memory, "dataset_reader.mix_sources": True})
                if args.shuffle_buffer:
                    overrides["dataset_reader.shuffle_buffer"] = args.shuffle_buffer
            folder = os.path.join(args.work, f"student_{size}_{mode}")
            log = folder + ".log"
            started = time.time()
            with open(log, "w") as handle:
                result = subprocess.run([sys.executable, "-c", WRAPPER, allennlp, "train", CONFIG, "-s", folder,
                                         "-o", json.dumps(overrides), "--include-package", "allennlp_structkd"],
                                        env=run_env, stdout=subprocess.PIPE, stderr=handle, text=True)
            seconds = time.time() - started
            if result.returncode:
                raise SystemExit(f"training with {size} transfer sentences ({mode}) failed; its log: {log}")
            peak = int(result.stdout.split("peak_rss_kib")[-1].split()[0]) / 1024
            with open(os.path.join(folder, "metrics.json")) as handle:
                metrics = json.load(handle)
            rows.append({"size": size, "mode": mode, "peak_mib": peak, "seconds": seconds, "annotate_seconds": annotate_seconds,
                         "dev_f1": metrics.get("best_validation_f1-measure-overall")})
            print(json.dumps(rows[-1]), flush=True)

    lines = [
        "# Peak memory of training with a growing transfer set",
        "",
        f"Produced by `python benchmarks/training_memory.py --data ../shared/data/conll2002 --work <new folder> --sizes "
        f"{' '.join(map(str, args.sizes))} --modes {' '.join(args.modes)} --in-memory {args.in_memory} --labeled {args.labeled} "
        f"--dev {args.dev} --seed {args.seed}"
        + (f" --shuffle-buffer {args.shuffle_buffer}" if args.shuffle_buffer else "")
        + (f" --epochs {args.epochs} --teacher-epochs {args.teacher_epochs}" if (args.epochs, args.teacher_epochs) != (1, 1) else "")
        + "`.",
        "",
        f"A Structural KD student (Case 1a, `struct_kd_case1a.jsonnet` as written, {args.epochs} epoch{'s' if args.epochs > 1 else ''}; "
        f"teachers of {args.teacher_epochs} epoch{'s' if args.teacher_epochs > 1 else ''}) on the first {args.labeled:,} "
        f"sentences of `esp.train` and `ned.train` as labeled data and N transfer sentences, half a language. The "
        "transfer set is **synthetic**: the words of every training sentence of both files repeated in order until "
        "there are N/2 a language (repetition of real sentences: the memory a sentence takes is that of real text; "
        "a repeated sentence's targets are read from the cache, as any sentence's are in training). The targets "
        "were written first by `python -m allennlp_structkd.annotate`, so the measured process reads, batches and "
        "trains. *lazy*: the data loader holds "
        f"{args.in_memory:,} instances at a time (`max_instances_in_memory`) and the reader interleaves labeled and "
        "transfer sentences of every language (`mix_sources: true`)"
        + (f", read in random order within {args.shuffle_buffer:,} sentences (`shuffle_buffer`)" if args.shuffle_buffer else "")
        + "; *eager*: AllenNLP's default, every instance in memory. Peak "
        "memory: the resident set of the `allennlp train` process (`getrusage(RUSAGE_CHILDREN)`), MiB.",
        "",
        "| transfer sentences | mode | peak memory (MiB) | ratio to the smallest set, same mode | above the smallest set (MiB) "
        "| training wall time (s) | dev span F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    smallest = {mode: next(r["peak_mib"] for r in rows if r["mode"] == mode and r["size"] == min(args.sizes))
                for mode in args.modes}
    for row in rows:
        f1 = f"{100 * row['dev_f1']:.2f}" if row["dev_f1"] is not None else ""
        lines.append(f"| {row['size']:,} | {row['mode']} | {row['peak_mib']:,.0f} | {row['peak_mib'] / smallest[row['mode']]:.2f}x "
                     f"| {row['peak_mib'] - smallest[row['mode']]:+,.0f} | {row['seconds']:.0f} | {f1} |")
    if "lazy" in args.modes and len(args.sizes) > 1:
        largest = max(args.sizes)
        ratio = next(r["peak_mib"] for r in rows if r["mode"] == "lazy" and r["size"] == largest) / smallest["lazy"]
        verdict = "met" if ratio <= 1.3 else f"missed by {ratio - 1.3:.2f}x"
        lines += ["", f"Goal: peak memory with {largest:,} transfer sentences at most 1.3x that with {min(args.sizes):,}, "
                      f"in the lazy mode: {ratio:.2f}x ({verdict})."]
    lines += ["", "Most of the smallest set's peak is the process itself (PyTorch, AllenNLP, spaCy and the model, about "
                  "1.5 GiB here): the column above it is what the data adds.",
              "", "Wall times depend on the machine and its load (2 CPU cores here); "
              + ("the dev F1 is one epoch's with teachers of one epoch, of no interest here beyond showing the runs trained."
                 if args.epochs == 1 else "dev F1: the best epoch's, on the first "
                 f"{args.dev:,} sentences of each dev split, one seed.")]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        write(os.path.abspath(args.output), text)


if __name__ == "__main__":
    main()

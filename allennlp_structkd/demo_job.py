"""
The main job (``make demo``): train a teacher, distil a small student from it with structural KD
(Case 1a, CRF → CRF), train the same student without KD, and print their scores, sizes and
speeds side by side.

    python -m allennlp_structkd.demo_job --output runs/demo [--data DIR] [--seed 13]

Data. By default the project writes its own toy multilingual NER dataset (``toy_data``) into
``OUTPUT/data``, so the job runs offline anywhere. ``--data DIR`` runs the same job on real
corpora in one of these layouts:

* CoNLL-2002: ``esp.train``/``esp.testa`` and/or ``ned.train``/``ned.testa`` (NER, span F1);
* CoNLL column files named by language: ``<lang>.train`` and ``<lang>.dev`` (NER, IOB2);
* CoNLL-U: ``<lang>/train.conllu`` and ``<lang>/dev.conllu`` (UPOS tagging, accuracy).

Every model is trained by ``allennlp train`` on the project's configs in ``training_configs/``
(with data paths passed as the environment variables those configs read); logs and archives are
kept under ``OUTPUT``; the table is also written to ``OUTPUT/summary.md`` and ``summary.json``.
Speed is measured in this process, on one CPU thread, predicting the dev sentences in batches of
32, every model over the same sentences.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from allennlp_structkd import toy_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "training_configs")
CONLL2002 = {"es": "esp", "nl": "ned"}


def find_data(directory: str) -> Tuple[str, Dict[str, str], Dict[str, str]]:
    """``(task, {lang: train}, {lang: dev})`` for a data directory in one of the supported layouts."""
    train, dev = {}, {}
    for lang, prefix in CONLL2002.items():
        if os.path.isfile(os.path.join(directory, f"{prefix}.train")) and os.path.isfile(os.path.join(directory, f"{prefix}.testa")):
            train[lang] = os.path.join(directory, f"{prefix}.train")
            dev[lang] = os.path.join(directory, f"{prefix}.testa")
    for path in sorted(glob.glob(os.path.join(directory, "*.train"))):
        lang = os.path.basename(path)[: -len(".train")]
        dev_path = os.path.join(directory, f"{lang}.dev")
        if lang not in CONLL2002.values() and os.path.isfile(dev_path):
            train[lang], dev[lang] = path, dev_path
    if train:
        return "ner", train, dev
    for path in sorted(glob.glob(os.path.join(directory, "*", "train.conllu"))):
        lang = os.path.basename(os.path.dirname(path))
        dev_path = os.path.join(os.path.dirname(path), "dev.conllu")
        if os.path.isfile(dev_path):
            train[lang], dev[lang] = path, dev_path
    if train:
        return "upos", train, dev
    raise SystemExit(
        f"no data found in {directory}: expected CoNLL-2002 files (esp.train/esp.testa, ned.train/ned.testa), "
        "<lang>.train/<lang>.dev CoNLL column files, or <lang>/train.conllu and <lang>/dev.conllu"
    )


def run_allennlp(config: str, serialization_dir: str, env: Dict[str, str], label: str, step: str) -> Dict:
    log_path = serialization_dir + ".log"
    print(f"{step} training {label}: allennlp train {os.path.relpath(config, REPO)} (log: {log_path})", flush=True)
    started = time.time()
    command = [sys.executable, "-m", "allennlp", "train", config, "-s", serialization_dir, "-f",
               "--include-package", "allennlp_structkd"]
    with open(log_path, "w") as log:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log_path) as log:
            tail = log.read()[-3000:]
        raise SystemExit(f"training {label} failed (exit {result.returncode}); end of {log_path}:\n{tail}")
    with open(os.path.join(serialization_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    print(f"      done in {time.time() - started:.0f} s", flush=True)
    return metrics


INFERENCE_FIELDS = ("tokens", "upos", "metadata")  # what a model may read at prediction time (no gold labels)


def measure(archive_path: str, sentences: List[List[str]], batch_size: int = 32, repeats: int = 2,
            instances: Optional[List] = None) -> Dict[str, float]:
    """
    Sentences per second of an archive's model on one CPU thread, batches of ``batch_size``, best of
    ``repeats`` after a warm-up; ``instances`` (e.g. parser input with its PoS tags) instead of bare
    ``sentences``: their gold fields are dropped. Time is this process's CPU time (one thread), so
    that other work on a shared machine does not count against the model measured.
    """
    import torch
    from allennlp.data import Batch, Instance
    from allennlp.data.fields import TextField
    from allennlp.data.tokenizers import Token
    from allennlp.models.archival import load_archive

    torch.set_num_threads(1)
    archive = load_archive(archive_path)
    model, reader = archive.model, archive.dataset_reader
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    batches = []
    if instances is None:
        instances = [Instance({"tokens": TextField([Token(w) for w in ws], reader.token_indexers)}) for ws in sentences]
    else:
        instances = [Instance({k: v for k, v in i.fields.items() if k in INFERENCE_FIELDS}) for i in instances]
    for start in range(0, len(instances), batch_size):
        batch = Batch(instances[start : start + batch_size])
        batch.index_instances(model.vocab)
        batches.append(batch.as_tensor_dict())
    return {"parameters": parameters, "archive_mb": os.path.getsize(archive_path) / 2**20,
            "sentences_per_second": len(instances) / cpu_seconds(model, batches, repeats)}


def cpu_seconds(model, batches: List[Dict], repeats: int = 2) -> float:
    """Best CPU time of this process over ``repeats`` passes of ``model`` over tensor ``batches``, after a warm-up."""
    import torch

    model.eval()
    best = float("inf")
    with torch.no_grad():
        model(**batches[0])  # warm-up
        for _ in range(repeats):
            started = time.process_time()
            for tensors in batches:
                model(**tensors)
            best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="runs/demo")
    parser.add_argument("--data", default=None, help="a directory of real corpora (see the layouts above)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--epochs", type=int, default=None, help="student epochs (default: 10, or 15 on real data)")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="teacher epochs (default: 10, or 15 on real data)")
    parser.add_argument("--max-speed-sentences", type=int, default=2000)
    args = parser.parse_args()

    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    if args.data is None:
        data_dir = os.path.join(output, "data")
        toy_data.generate(data_dir, seed=args.seed, train=800, dev=300, unlabeled=200)
        print(f"[0/4] wrote the toy multilingual NER dataset (seed {args.seed}) to {data_dir}")
        task = "ner"
        train = {lang: os.path.join(data_dir, f"toy_ner_{lang}.train") for lang in ("es", "nl")}
        dev = {lang: os.path.join(data_dir, f"toy_ner_{lang}.dev") for lang in ("es", "nl")}
        epochs, teacher_epochs = args.epochs or 10, args.teacher_epochs or 10
    else:
        task, train, dev = find_data(os.path.abspath(args.data))
        print(f"[0/4] {task} data in {args.data}: languages {', '.join(sorted(train))}")
        epochs, teacher_epochs = args.epochs or 15, args.teacher_epochs or 15

    env = dict(os.environ)
    env.update({
        "STRUCTKD_TASK": task,
        "NER_TRAIN": json.dumps(train),
        "NER_DEV": json.dumps(dev),
        "STRUCTKD_SEED": str(args.seed),
        "STRUCTKD_EPOCHS": str(epochs),
        "STRUCTKD_TEACHER_EPOCHS": str(teacher_epochs),
        "STRUCTKD_CACHE": os.path.join(output, "cache"),
    })
    teacher_dir = os.path.join(output, "teacher")
    teacher_metrics = run_allennlp(os.path.join(CONFIGS, "teachers", "crf_tagger.jsonnet"), teacher_dir, env,
                                   "the teacher (BiLSTM-CRF, words + characters)", "[1/4]")
    teacher_archive = os.path.join(teacher_dir, "model.tar.gz")
    env.update({"TEACHER_ES": teacher_archive, "TEACHER_NL": teacher_archive})
    # every language goes to the one multilingual teacher
    student_config = os.path.join(output, "struct_kd_case1a_demo.jsonnet")
    with open(student_config, "w") as handle:
        handle.write(
            f"(import '{os.path.join(CONFIGS, 'struct_kd_case1a.jsonnet')}') + "
            "{ dataset_reader+: { teachers: { xx: std.extVar('TEACHER_ES') }, default_teacher: 'xx' } }\n"
        )
    kd_metrics = run_allennlp(student_config, os.path.join(output, "student_struct_kd"), env,
                              "the student with Structural KD (Case 1a)", "[2/4]")
    base_metrics = run_allennlp(os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), os.path.join(output, "student_no_kd"),
                                env, "the same student without KD", "[3/4]")

    print("[4/4] measuring sizes and speeds (one CPU thread, batch 32, dev sentences)", flush=True)
    from allennlp_structkd.dataset_readers import ConllNerReader, ConlluReader

    reader = ConllNerReader() if task == "ner" else ConlluReader(read_heads=False)
    sentences = [inst["metadata"]["words"] for inst in reader.read(json.dumps(dev))][: args.max_speed_sentences]
    rows = []
    metric = "best_validation_f1-measure-overall" if task == "ner" else "best_validation_accuracy"
    for name, directory, metrics in (
        ("teacher (BiLSTM-CRF)", teacher_dir, teacher_metrics),
        ("student, Struct. KD", os.path.join(output, "student_struct_kd"), kd_metrics),
        ("student, w/o KD", os.path.join(output, "student_no_kd"), base_metrics),
    ):
        row = {"model": name, "dev_score": metrics.get(metric), "best_epoch": metrics.get("best_epoch")}
        row.update(measure(os.path.join(directory, "model.tar.gz"), sentences))
        rows.append(row)
    teacher = rows[0]
    score_name = "dev span F1" if task == "ner" else "dev UPOS accuracy"
    lines = [
        f"| model | {score_name} | parameters | archive | sentences/s | speed-up | size ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {100 * row['dev_score']:.2f} | {row['parameters']:,} | {row['archive_mb']:.2f} MB"
            f" | {row['sentences_per_second']:.0f} | {row['sentences_per_second'] / teacher['sentences_per_second']:.1f}x"
            f" | {teacher['parameters'] / row['parameters']:.1f}x |"
        )
    table = "\n".join(lines)
    summary = {
        "command": "python -m allennlp_structkd.demo_job " + " ".join(sys.argv[1:]),
        "data": args.data or "toy dataset (allennlp_structkd.toy_data)",
        "task": task, "seed": args.seed, "epochs": epochs, "teacher_epochs": teacher_epochs,
        "speed_sentences": len(sentences), "rows": rows,
    }
    with open(os.path.join(output, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    with open(os.path.join(output, "summary.md"), "w") as handle:
        handle.write(f"Produced by `{summary['command']}` (seed {args.seed}, data: {summary['data']}).\n\n{table}\n")
    print()
    print(table)
    print(f"\n(seed {args.seed}; dev sentences: {len(sentences)}; written to {output}/summary.md)")


if __name__ == "__main__":
    main()

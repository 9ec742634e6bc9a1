"""
The main job (``make demo``): what structural KD buys, on real data, in minutes. A large teacher
is trained on every labeled sentence; a small student gets only ``--labeled`` of them labeled
(default 200) and the rest as unlabeled text, which it learns from the teacher with Structural
KD (Case 1a, CRF → CRF); the same student is also trained on its labeled sentences alone. The job
prints their dev scores, sizes and speeds side by side, and the KD student's gain.

    python -m allennlp_structkd.demo_job --output runs/demo [--data DIR] [--labeled 200] [--seed 13]

Data. By default: UPOS tagging on a slice of UD English EWT shipped with the package
(``allennlp_structkd/demo_data/ud_en_ewt``, CC BY-SA 4.0, its licence beside it). ``--data DIR``
runs the same job on corpora in one of these layouts:

* CoNLL-2002: ``esp.train``/``esp.testa`` and/or ``ned.train``/``ned.testa`` (NER, span F1);
* CoNLL column files named by language: ``<lang>.train`` and ``<lang>.dev`` (NER, IOB2);
* CoNLL-U: ``<lang>/train.conllu`` and ``<lang>/dev.conllu`` (UPOS tagging, accuracy).

``--labeled 0`` gives the students every training sentence labeled (then KD has no unlabeled text).
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
import sys
import time
from typing import Dict, List, Optional, Tuple

from allennlp_structkd.commands import run_allennlp
from allennlp_structkd.dataset_readers.common import read_blocks

PACKAGE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PACKAGE)
DEMO_DATA = os.path.join(PACKAGE, "demo_data", "ud_en_ewt")
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


def split_labeled(train: Dict[str, str], labeled: int, directory: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """
    Each language's first ``labeled`` sentences as a labeled file (the original lines), and the
    rest as unlabeled text, one sentence a line (the first column's words; CoNLL-U comments, range
    and empty-node lines skipped): ``({lang: labeled path}, {lang: unlabeled path})``.
    """
    os.makedirs(directory, exist_ok=True)
    labeled_paths, unlabeled_paths = {}, {}
    for lang, path in train.items():
        conllu = path.endswith(".conllu")
        labeled_path = os.path.join(directory, f"{lang}.labeled" + (".conllu" if conllu else ""))
        unlabeled_path = os.path.join(directory, f"{lang}.unlabeled.txt")
        with open(labeled_path, "w", encoding="utf-8") as kept, open(unlabeled_path, "w", encoding="utf-8") as rest:
            count = 0
            for _, block in read_blocks(path):
                lines = [text for _, text in block]
                if lines[0].startswith("-DOCSTART-"):
                    continue
                if count < labeled:
                    kept.write("\n".join(lines) + "\n\n")
                else:
                    words = []
                    for text in lines:
                        columns = text.split("\t") if conllu else text.split()
                        if conllu and (text.startswith("#") or not columns[0].isdigit()):
                            continue
                        words.append(columns[1] if conllu else columns[0])
                    rest.write(" ".join(words) + "\n")
                count += 1
        labeled_paths[lang], unlabeled_paths[lang] = labeled_path, unlabeled_path
    return labeled_paths, unlabeled_paths


def train_step(config: str, serialization_dir: str, env: Dict[str, str], label: str, step: str) -> Dict:
    """One `allennlp train` of the job, logged beside its folder; its metrics, or the end of its log on failure."""
    log_path = serialization_dir + ".log"
    print(f"{step} training {label}: allennlp train {os.path.relpath(config, REPO)} (log: {log_path})", flush=True)
    started = time.time()
    result = run_allennlp("train", config, "-s", serialization_dir, "-f", env=env, log=log_path, append=False)
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
    ``sentences``: their gold fields are dropped. A model over a frozen encoder's features
    (``structkd_frozen_encoder``) also pays for the encoder: its forward passes over the sentences
    (no cache) are timed and its parameters counted. Time is this process's CPU time (one thread), so
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
    seconds = cpu_seconds(model, batches, repeats)
    # a frozen encoder's features come from a cache in training, but serving new text computes
    # them: its forward passes (no cache) and its parameters count as the model's
    from allennlp_structkd.data import FrozenEncoderIndexer

    for indexer in (getattr(reader, "token_indexers", None) or {}).values():
        if isinstance(indexer, FrozenEncoderIndexer):
            words = [[t.text for t in i["tokens"].tokens] for i in instances]
            indexer.encode(words[:2])  # loads the encoder; warm-up
            best = float("inf")
            for _ in range(repeats):
                started = time.process_time()
                for start in range(0, len(words), batch_size):
                    indexer.encode(words[start : start + batch_size])
                best = min(best, time.process_time() - started)
            seconds += best
            parameters += sum(p.numel() for p in indexer._encoder.parameters())
    return {"parameters": parameters, "archive_mb": os.path.getsize(archive_path) / 2**20,
            "sentences_per_second": len(instances) / seconds}


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
    parser.add_argument("--data", default=None, help="a directory of corpora (see the layouts above; default: the "
                        "packaged UD English EWT slice)")
    parser.add_argument("--labeled", type=int, default=200, help="labeled sentences per language for the students; "
                        "the rest of the training text is their unlabeled text (0: all labeled)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--epochs", type=int, default=15, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=10, help="teacher epochs")
    parser.add_argument("--max-speed-sentences", type=int, default=2000)
    args = parser.parse_args()
    if args.labeled < 0 or args.epochs < 1 or args.teacher_epochs < 1:
        parser.error("--labeled must be >= 0, --epochs and --teacher-epochs >= 1")

    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    if args.data:
        task, train, dev = find_data(os.path.abspath(args.data))
    else:
        task, train, dev = "upos", {"en": os.path.join(DEMO_DATA, "train.conllu")}, {"en": os.path.join(DEMO_DATA, "dev.conllu")}
    source = args.data or "UD English EWT slice shipped with the package (CC BY-SA 4.0)"
    epochs, teacher_epochs = args.epochs, args.teacher_epochs
    if args.labeled:
        student_train, unlabeled = split_labeled(train, args.labeled, os.path.join(output, "data"))
        kd_train = json.dumps({"labeled": student_train, "unlabeled": unlabeled})
        setting = f"students: {args.labeled} labeled sentences per language, the rest of the training text unlabeled"
    else:
        student_train, kd_train = train, json.dumps(train)
        setting = "students: every training sentence labeled"
    print(f"[0/4] {task} data: {source}; languages {', '.join(sorted(train))}; {setting}")

    env = dict(os.environ)
    env.update({
        "STRUCTKD_TASK": task,
        "TAGGING_TRAIN": json.dumps(train),
        "TAGGING_DEV": json.dumps(dev),
        "STRUCTKD_SEED": str(args.seed),
        "STRUCTKD_EPOCHS": str(epochs),
        "STRUCTKD_TEACHER_EPOCHS": str(teacher_epochs),
        "STRUCTKD_CACHE": os.path.join(output, "cache"),
    })
    teacher_dir = os.path.join(output, "teacher")
    teacher_metrics = train_step(os.path.join(CONFIGS, "teachers", "crf_tagger_large.jsonnet"), teacher_dir, env,
                                   "the teacher (large BiLSTM-CRF, every labeled sentence)", "[1/4]")
    teacher_archive = os.path.join(teacher_dir, "model.tar.gz")
    env.update({"TEACHER_ES": teacher_archive, "TEACHER_NL": teacher_archive})
    # every language goes to the one multilingual teacher
    student_config = os.path.join(output, "struct_kd_case1a_demo.jsonnet")
    with open(student_config, "w") as handle:
        handle.write(
            f"(import '{os.path.join(CONFIGS, 'struct_kd_case1a.jsonnet')}') + "
            "{ dataset_reader+: { teachers: { xx: std.extVar('TEACHER_ES') }, default_teacher: 'xx' } }\n"
        )
    kd_metrics = train_step(student_config, os.path.join(output, "student_struct_kd"), dict(env, TAGGING_TRAIN=kd_train),
                              "the small student with Structural KD (Case 1a)", "[2/4]")
    base_metrics = train_step(os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), os.path.join(output, "student_no_kd"),
                                dict(env, TAGGING_TRAIN=json.dumps(student_train)), "the same student without KD", "[3/4]")

    print("[4/4] measuring sizes and speeds (one CPU thread, batch 32, dev sentences)", flush=True)
    from allennlp_structkd.dataset_readers import ConllNerReader, ConlluReader

    reader = ConllNerReader() if task == "ner" else ConlluReader(read_heads=False)
    sentences = [inst["metadata"]["words"] for inst in reader.read(json.dumps(dev))][: args.max_speed_sentences]
    rows = []
    metric = "best_validation_f1-measure-overall" if task == "ner" else "best_validation_accuracy"
    for name, directory, metrics in (
        ("teacher (large BiLSTM-CRF)", teacher_dir, teacher_metrics),
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
    gain = 100 * (rows[1]["dev_score"] - rows[2]["dev_score"])
    gap = 100 * (rows[0]["dev_score"] - rows[1]["dev_score"])
    lines += ["", f"Structural KD vs the same student without KD: {gain:+.2f} points; the KD student is "
                  f"{rows[1]['sentences_per_second'] / teacher['sentences_per_second']:.1f}x faster and "
                  f"{teacher['parameters'] / rows[1]['parameters']:.1f}x smaller than its teacher, {gap:.2f} points below it."]
    table = "\n".join(lines)
    summary = {
        "command": "python -m allennlp_structkd.demo_job " + " ".join(sys.argv[1:]),
        "data": source, "setting": setting,
        "task": task, "seed": args.seed, "epochs": epochs, "teacher_epochs": teacher_epochs,
        "speed_sentences": len(sentences), "rows": rows,
    }
    with open(os.path.join(output, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    with open(os.path.join(output, "summary.md"), "w") as handle:
        handle.write(f"Produced by `{summary['command']}` (seed {args.seed}, data: {summary['data']}; {setting}).\n\n{table}\n")
    print()
    print(table)
    print(f"\n(seed {args.seed}; dev sentences: {len(sentences)}; written to {output}/summary.md)")


if __name__ == "__main__":
    main()

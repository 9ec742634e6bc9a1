"""
What structural KD costs per training epoch, with cached teacher outputs, against the same student
trained without KD — measured in the same run (the Sequence-labeling KD issue's goal: at most 1.2x;
in Wang et al. 2020, Posterior KD took 1.45x and Top-WK 1.63x the baseline, teacher prediction
included). Also reports the one-off annotation cost (the teacher over the training set, cache empty)
and the cost of reading the annotated instances back from the cache.

The students are built from the project's configs (``baseline_no_kd.jsonnet`` against
``struct_kd_case1a.jsonnet``, plus ``baseline_posterior.jsonnet`` and ``baseline_top_wk.jsonnet``);
an epoch is one pass of forward, backward and optimizer step over the training batches, the
instances already in memory as AllenNLP keeps them. CPU, one thread; the best of ``--epochs`` epochs.

    python benchmarks/kd_epoch_benchmark.py [--data DIR_OR_TOY] [--sentences 2000] [--output docs/kd_benchmark.md]

``--data`` takes what ``experiments.demo_job`` takes (e.g. ../shared/data/conll2002); by
default a toy dataset of ``--sentences`` sentences per language is written to a temporary folder.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import torch

torch.set_num_threads(1)

from allennlp.common import Params  # noqa: E402
from allennlp.data import DatasetReader, Vocabulary  # noqa: E402
from allennlp.data.data_loaders import MultiProcessDataLoader  # noqa: E402
from allennlp.models import Model  # noqa: E402
from allennlp.training.optimizers import Optimizer  # noqa: E402
from report import emit  # noqa: E402  (benchmarks/report.py)

# the checkout's root, where the experiment tooling (experiments/) is imported from: a script's own folder
# is the one on the path
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import allennlp_structkd  # noqa: E402,F401
from allennlp_structkd.config_defaults import ext_vars  # noqa: E402
from allennlp_structkd.kd.teacher_archive import train_teacher_config  # noqa: E402
from experiments import toy_data  # noqa: E402
from experiments.demo_job import find_data  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "training_configs")


def read_all(reader, path):
    started = time.perf_counter()
    instances = list(reader.read(path))
    return instances, time.perf_counter() - started


def epoch_time(config, train_path, epochs, vocab=None):
    params = Params.from_file(config, ext_vars=ext_vars())
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances, read_seconds = read_all(reader, train_path)
    vocab = vocab or Vocabulary.from_instances(instances)
    loader_params = params.pop("data_loader")
    loader = MultiProcessDataLoader.from_params(params=loader_params, reader=reader, data_path=train_path)
    loader.index_with(vocab)
    model = Model.from_params(vocab=vocab, params=params.pop("model"))
    optimizer = Optimizer.from_params(model_parameters=list(model.named_parameters()),
                                      params=params.pop("trainer").pop("optimizer"))
    model.train()
    best = float("inf")
    list(loader)  # the first pass reads the instances into memory, as allennlp keeps them
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in loader:  # batching and padding (of the teacher targets too) are part of the epoch
            optimizer.zero_grad()
            model(**batch)["loss"].backward()
            optimizer.step()
        best = min(best, time.perf_counter() - started)
    return best, read_seconds, reader, vocab


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--sentences", type=int, default=2000, help="toy sentences per language")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="structkd_kd_bench_")
    try:
        if args.data is None:
            toy_data.generate(work, seed=3, train=args.sentences, dev=50, unlabeled=10)
            task = "ner"
            train = {lang: os.path.join(work, f"toy_ner_{lang}.train") for lang in ("es", "nl")}
            dev = {lang: os.path.join(work, f"toy_ner_{lang}.dev") for lang in ("es", "nl")}
            data_name = f"toy dataset, {args.sentences} training sentences per language"
        else:
            task, train, dev = find_data(args.data)
            data_name = args.data
        os.environ.update({
            "STRUCTKD_TASK": task, "TAGGING_TRAIN": json.dumps(train), "TAGGING_DEV": json.dumps(dev),
            "STRUCTKD_CACHE": os.path.join(work, "cache"), "STRUCTKD_TEACHER_EPOCHS": "1",
        })
        teacher = train_teacher_config(os.path.join(CONFIGS, "teachers", "crf_tagger.jsonnet"), os.path.join(work, "cache"))
        os.environ.update({"TEACHER_ES": teacher, "TEACHER_NL": teacher})
        train_path = json.dumps(train)
        base_time, base_read, _, vocab = epoch_time(os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), train_path, args.epochs)
        rows = [("w/o KD (baseline_no_kd)", base_time, base_read, None)]
        for name, config in (("Struct. KD, Case 1a (struct_kd_case1a)", "struct_kd_case1a.jsonnet"),
                             ("Posterior KD (baseline_posterior)", "baseline_posterior.jsonnet"),
                             ("Top-WK, k = 5 (baseline_top_wk)", "baseline_top_wk.jsonnet")):
            path = os.path.join(CONFIGS, config)
            # first read: the teacher annotates (cache empty); then the timed run reads from the cache
            reader = DatasetReader.from_params(Params.from_file(path, ext_vars=ext_vars()).pop("dataset_reader"))
            _, annotate_seconds = read_all(reader, train_path)
            seconds, read_seconds, reader, _ = epoch_time(path, train_path, args.epochs, vocab)
            assert reader.teacher_calls == 0, "the timed run should read every teacher output from the cache"
            rows.append((name, seconds, read_seconds, annotate_seconds))
            print(rows[-1], flush=True)
        sentences = sum(1 for _ in DatasetReader.from_params(Params.from_file(os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), ext_vars=ext_vars()).pop("dataset_reader")).read(train_path))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# Benchmark: the training cost of KD",
        "",
        f"Produced by `python benchmarks/kd_epoch_benchmark.py{' --data ' + args.data if args.data else ''}"
        f" --sentences {args.sentences} --epochs {args.epochs}` on {datetime.date.today().isoformat()},"
        f" {platform.machine()}, torch {torch.__version__}, one CPU thread. Data: {data_name} ({sentences} sentences).",
        "Epoch: batching, forward, backward and Adam step over all training batches (instances in memory), best of"
        f" {args.epochs}; the student of `training_configs/student.libsonnet`; the teacher `teachers/crf_tagger.jsonnet`.",
        "",
        "| student | epoch | vs w/o KD | reading the instances | one-off teacher annotation |",
        "|---|---|---|---|---|",
    ]
    for name, seconds, read_seconds, annotate_seconds in rows:
        annotate = "—" if annotate_seconds is None else f"{annotate_seconds:.1f} s"
        lines.append(f"| {name} | {seconds:.2f} s | {seconds / base_time:.2f}x | {read_seconds:.1f} s | {annotate} |")
    struct = rows[1][1] / base_time
    lines += ["", f"Goal (Struct. KD epoch at most 1.2x the baseline's): {struct:.2f}x, {'met' if struct <= 1.2 else 'NOT met'}.", ""]
    text = "\n".join(lines)
    emit(text, args.output)


if __name__ == "__main__":
    main()

"""Speed and size of a suite's models (sentences/s on one CPU thread, parameters), and its speed page.
"""
import itertools
import json
import os
import statistics
from typing import Any, Dict, List, Optional, Tuple, cast

from experiments import layout, pages
from experiments.catalogue import SUITES
from experiments.plots import plot_speed
from experiments.scores import run_scores


def speed_rows(suite: str, seeds: List[int], runs_dir: str, sentences: int = 500,
               quick: bool = False) -> Tuple[List[Tuple[str, Dict[str, Any]]], Optional[List[List[str]]]]:
    """``([(run name, measure() row)], the words measured)`` for every finished model of a suite (first seed)."""
    from allennlp.data.fields import MetadataField

    from allennlp_structkd.archives import load_model_archive
    from experiments.demo_job import measure, measure_huggingface
    from experiments.evaluation import labels_spans, token_classifier_of
    from experiments.spacy_baseline import measure as measure_spacy
    from experiments.spacy_baseline import pipeline_of

    spec = SUITES[suite](quick)
    dev = spec.env.get("TAGGING_DEV") or spec.env.get("PARSE_DEV") or spec.env.get("UD_DEV")
    if dev is None:
        raise ValueError(f"suite {suite} names no dev data (TAGGING_DEV, PARSE_DEV or UD_DEV) to measure speed on")
    path = json.loads(dev) if dev.strip().startswith("{") else dev
    found: Dict[str, Dict[str, Any]] = {}
    words: Optional[List[List[str]]] = None
    # the archives first (their readers give the words), then the fine-tuned Hugging Face teachers and the spaCy
    # pipelines on the same words
    for run in sorted(spec.runs, key=lambda r: r.finetune is not None or r.spacy is not None):
        directory = layout.run_dir(runs_dir, suite, run, seeds[0], quick)
        archive = os.path.join(directory, "model.tar.gz")
        classifier = token_classifier_of(directory)
        weights = (os.path.join(classifier, "config.json") if run.finetune is not None else
                   os.path.join(pipeline_of(directory), "meta.json") if run.spacy is not None else archive)
        reads_archive = run.finetune is None and run.spacy is None
        if not os.path.isfile(weights) or (not reads_archive and words is None):
            continue
        # measured once per model (its size and time of writing) and number of sentences: a table made again reads it
        stamp = os.stat(weights)
        cache = os.path.join(directory, "speed.json")
        key = {"size": stamp.st_size, "mtime": stamp.st_mtime, "sentences": sentences}
        if os.path.isfile(cache):
            with open(cache) as handle:
                saved = json.load(handle)
            if saved.get("key") == key:
                found[run.name] = saved["row"]
                words = words or saved["words"]
                continue
        if run.finetune is not None:
            assert words is not None  # checked above
            row = measure_huggingface(classifier, words, "BIO" if labels_spans(classifier) else None)
        elif run.spacy is not None:
            assert words is not None  # checked above
            row = measure_spacy(pipeline_of(directory), words)
        else:
            # each model reads the same sentences with its own reader (a parser also gets their PoS tags)
            instances = list(itertools.islice(load_model_archive(archive).validation_dataset_reader.read(path), sentences))
            words = words or [cast(MetadataField, i["metadata"])["words"] for i in instances]
            row = measure(archive, words, instances=instances)
        with open(cache + ".tmp", "w") as handle:
            json.dump({"key": key, "row": row, "words": words}, handle)
        os.replace(cache + ".tmp", cache)
        found[run.name] = row
    return [(run.name, found[run.name]) for run in spec.runs if run.name in found], words


def speed_lines(suite: str, seeds: List[int], rows, words, lead: str) -> List[str]:
    """The speed table of ``rows``, its description after ``lead``."""
    reference = rows[0][1]
    words_per_sentence = sum(len(sentence) for sentence in words) / max(1, len(words))
    lines = [
        lead + f"One CPU thread (the process's CPU time, best of 2), batch 32, the first {len(words)} dev sentences, seed"
        f" {seeds[0]}'s archives; ratios against the first row. A model over a frozen encoder's features pays for the"
        " encoder too: its forward passes (no feature cache) and its parameters.",
        "",
        "| model | sentences/s | words/s | speed-up | parameters | size ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows:
        speedup = row["sentences_per_second"] / reference["sentences_per_second"]
        lines.append(f"| {name} | {row['sentences_per_second']:.0f} | {row['sentences_per_second'] * words_per_sentence:,.0f}"
                     f" | {speedup:.2f}x"
                     f" | {row['parameters']:,} | {reference['parameters'] / row['parameters']:.2f}x |")
    return lines


def speed_table(suite: str, seeds: List[int], runs_dir: str, sentences: int = 500, quick: bool = False) -> str:
    """
    Sentences per second and parameters of every finished model of a suite (first seed), like
    Table 7 of Wang et al. 2021: CPU, one thread, batches of 32, the first ``sentences`` dev
    sentences, every model over the same sentences in one process. Empty when no model is finished.
    """
    spec = SUITES[suite](quick)
    rows, words = speed_rows(suite, seeds, runs_dir, sentences, quick)
    if not rows:
        return ""
    flag = " --quick" if quick else ""
    lines = [f"### Speed and size, suite `{suite}`{' (quick)' if quick else ''}", "",
             *speed_lines(suite, seeds, rows, words, f"Produced by `python -m experiments speed {suite}{flag}`. ")]
    points = []
    for name, row in rows:
        run = next(r for r in spec.runs if r.name == name)
        scores = run_scores(spec, suite, run, seeds, quick, runs_dir)[0]
        if scores:
            points.append((name, row["sentences_per_second"] / rows[0][1]["sentences_per_second"], statistics.mean(scores)))
    folder = layout.pages_folder(runs_dir, suite, quick)
    if len(points) > 1:
        lines += ["", f"![{spec.metric_name} against speed-up]({plot_speed(suite, spec, points, folder, quick)})"]
    return pages.publish_page(f"{suite}{'_quick' if quick else ''}_speed.md", lines, folder)

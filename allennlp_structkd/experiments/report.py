"""The results pages: a suite's table (dev, test, ASO marks, summary), the wall-time table, docs/results.md.
"""
import concurrent.futures
import glob
import json
import os
import statistics
import sys
from typing import Dict, List, Optional

from allennlp_structkd.experiments import layout, runner, speed
from allennlp_structkd.experiments.catalogue import RUNS_OF, SUITES
from allennlp_structkd.experiments.plots import plot_curves
from allennlp_structkd.experiments.scores import _duration, _mean_std, _run_metrics, _run_scores, _wall_seconds
from allennlp_structkd.experiments.suite import Suite


TEST_NAMES = {"esp.testa": "esp.testb", "ned.testa": "ned.testb", "dev.conllu": "test.conllu", "dev.dp": "test.dp"}


def test_data_path(spec: Suite, test_dir: str) -> str:
    """
    The test counterpart of a suite's dev data under ``test_dir`` (laid out like the data
    directory: ``conll2002/esp.testb``, ``ud/<lang>/test.conllu``, ``ptb_dep_sample/test.dp``), as
    the data path the suite's readers take. Missing files are an error naming them.
    """
    name = next((n for n in ("TAGGING_DEV", "PARSE_DEV") if n in spec.env), None)
    if name is None:
        raise SystemExit("this suite names no dev data (TAGGING_DEV or PARSE_DEV): it cannot be scored on test data")
    dev = spec.env[name]
    mapping = json.loads(dev) if dev.strip().startswith("{") else {"": dev}
    data_dir, test = layout._data_dir(), {}
    for lang, path in mapping.items():
        relative = os.path.relpath(path, data_dir)
        folder, base = os.path.split(relative)
        test[lang] = os.path.join(test_dir, folder, TEST_NAMES.get(base, base.replace("dev", "test")))
    missing = sorted(p for p in test.values() if not os.path.isfile(p))
    if missing:
        raise SystemExit(f"--test-data {test_dir}: missing {', '.join(missing)} (the layout of the data directory)")
    return json.dumps(test) if "" not in test else test[""]


def write_table(suite: str, seeds: List[int], quick: bool, runs_dir: str, per_language: bool = True,
                test_dir: Optional[str] = None, workers: int = 1) -> str:
    """
    A suite's page from its finished runs. ``test_dir``: also score each run's archive (the epoch
    chosen on dev; test data never takes part in selection) on the test data there, in a column of its own.
    ``workers``: how many of those evaluations run at once.
    """
    spec = SUITES[suite](quick)
    test_path = test_data_path(spec, test_dir) if test_dir else None
    test_metric = spec.eval_metric
    # per-language columns run `allennlp evaluate` for every archive (slow for a transformer teacher)
    languages = spec.per_language if per_language else {}
    also = spec.also
    env = dict(os.environ, **spec.env)
    # every evaluation first, ``workers`` at a time (each is a subprocess, cached in its run's folder)
    targets = [(lang, data, spec.eval_metric) for lang, data in languages.items()] + (
        [("test", test_path, test_metric)] if test_path else [])
    jobs = [(layout._run_dir(runs_dir, suite, run, seed, quick), data, metric, name)
            for run in spec.runs for seed in (seeds[:1] if run.teacher else seeds) for name, data, metric in targets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        evaluated = dict(zip([(job[0], job[3]) for job in jobs],
                             pool.map(lambda job: runner._evaluate(job[0], job[1], env, job[2], job[3]), jobs)))
    lines = [
        f"## Suite `{suite}`{' (quick)' if quick else ''}",
        "",
        spec.description,
        "",
        f"Produced by `STRUCTKD_DATA_DIR=<data> {spec.command_env}python -m allennlp_structkd.experiments run {suite}"
        f" --seeds {' '.join(map(str, seeds))}{' --quick' if quick else ''}`; dev splits; {spec.metric_name} ×100,"
        " mean ± standard deviation over seeds (teachers: first seed only). †: the method is almost"
        " stochastically dominant over its baseline (Almost Stochastic Order, `deepsig.aso`, ε_min < 0.5 at"
        " confidence 0.95; the ε_min column), computed when both have at least 2 seeds.",
        "",
        f"| model | {spec.metric_name} | seeds | ε_min vs baseline |"
        + "".join(f" {name} |" for _, name in also) + "".join(f" {lang} |" for lang in languages)
        + (" test |" if test_path else "") + " params | epochs (best) |",
        "|---|---|---|---|" + "---|" * (len(also) + len(languages) + bool(test_path)) + "---|---|",
    ]
    all_scores: Dict[str, List[float]] = {}
    language_scores: Dict[str, Dict[str, float]] = {}  # run -> lang -> mean dev score on that language
    for run in spec.runs:
        scores, params, best = _run_scores(spec, suite, run, seeds, quick, runs_dir)
        all_scores[run.name] = scores
        if not scores:
            lines.append(f"| {run.name} | (not run) | 0 | |" + " |" * (len(also) + len(languages) + bool(test_path)) + " | |")
            continue
        per_language = ""
        for key, _ in also:
            values = [100 * m[key] for m in _run_metrics(suite, run, seeds, quick, runs_dir) if key in m]
            per_language += f" {_mean_std(values)} |"
        for lang in languages:
            values = [evaluated[layout._run_dir(runs_dir, suite, run, seed, quick), lang]
                      for seed in (seeds[:1] if run.teacher else seeds)]
            values = [100 * v for v in values if v is not None]
            # a run whose archive is gone (brought back from another machine without it) has fewer: say so
            fewer = f" ({len(values)} of {len(scores)} seeds)" if values and len(values) < len(scores) else ""
            per_language += f" {statistics.mean(values):.2f}{fewer} |" if values else " |"
            if values:
                language_scores.setdefault(run.name, {})[lang] = statistics.mean(values)
        if test_path:
            values = [evaluated[layout._run_dir(runs_dir, suite, run, seed, quick), "test"]
                      for seed in (seeds[:1] if run.teacher else seeds)]
            per_language += f" {_mean_std([100 * v for v in values if v is not None])} |"
        spread = f" ± {statistics.stdev(scores):.2f}" if len(scores) > 1 else ""
        significance, mark = "", ""
        base = all_scores.get(run.baseline or "", [])
        if len(scores) >= 2 and len(base) >= 2:
            from deepsig import aso

            eps = aso(scores, base, confidence_level=0.95, seed=1234, show_progress=False)
            significance, mark = f"{eps:.2f}", " †" if eps < 0.5 else ""
        lines.append(f"| {run.name} | {statistics.mean(scores):.2f}{spread}{mark} | {len(scores)} | {significance} |"
                     f"{per_language} {params or ''} | {best} |")
    seconds = sum(_duration(m.get("training_duration", "0:0:0")) for run in spec.runs
                  for m in _run_metrics(suite, run, seeds, quick, runs_dir))
    lines += ["", f"Training time of these runs, summed (AllenNLP's `training_duration`: reading data and annotating it"
                  f" with the teacher come before it and are not counted): {seconds / 3600:.1f} h on {spec.machine}."]
    if spec.summary:  # the headline page: KD's gain, the gap to the teachers, speed and size, on one page
        measured = speed._speed_rows(suite, seeds, runs_dir) if not quick else None
        lines += _summary_lines(spec, all_scores, language_scores, measured if measured and measured[0] else None)
        if measured and measured[0]:
            lines += ["", *speed._speed_lines(suite, seeds, *measured, lead="Speed and size: ")]
    os.makedirs(os.path.join(layout.REPO, "docs", "results"), exist_ok=True)
    curve = plot_curves(suite, spec, all_scores, quick)
    if curve:
        lines += ["", f"![{spec.metric_name} against the amount of unlabeled data]({curve})"]
    return _publish(f"{suite}{'_quick' if quick else ''}.md", lines)


def wall_time_table(runs_dir: str) -> str:
    """What the full set costs on this machine: every suite's finished runs, their wall and training time."""
    lines = [
        "## Wall time of the full set",
        "",
        "Produced by `python -m allennlp_structkd.experiments walltime` from the finished runs under `runs/experiments/`"
        " (full runs, every seed). A run's wall time covers reading, teacher annotation, training and archiving"
        " (recorded by the runner; for runs older than that record, config.json to model.tar.gz); training time is"
        " AllenNLP's `training_duration`. The runs shared the 2 cores with 2-5 others, so these are loaded times: the"
        " last column, half the summed wall time, estimates the suite alone with `--workers 2` (pessimistically).",
        "",
        "| suite | finished runs | summed wall time | summed training time | estimated, 2 workers |",
        "|---|---|---|---|---|",
    ]
    total_wall = total_train = 0.0
    total_runs = 0
    for suite in sorted(SUITES):
        if suite in RUNS_OF:  # its runs are another suite's
            continue
        folder = layout._suite_folder(runs_dir, suite)
        if not os.path.isdir(folder):
            continue
        wall = train = 0.0
        count = 0
        for metrics in sorted(glob.glob(os.path.join(folder, "*", "seed_*", "metrics.json"))):
            directory = os.path.dirname(metrics)
            seconds = _wall_seconds(directory)
            with open(metrics) as handle:
                train += _duration(json.load(handle).get("training_duration", "0:0:0"))
            wall += seconds or 0.0
            count += 1
        if not count:
            continue
        total_wall, total_train, total_runs = total_wall + wall, total_train + train, total_runs + count
        lines.append(f"| {suite} | {count} | {wall / 3600:.1f} h | {train / 3600:.1f} h | {wall / 7200:.1f} h |")
    lines.append(f"| **all** | {total_runs} | {total_wall / 3600:.1f} h | {total_train / 3600:.1f} h |"
                 f" {total_wall / 7200:.1f} h |")
    return _publish("walltime.md", lines)


def _summary_lines(spec: Suite, all_scores: Dict[str, List[float]], language_scores: Dict[str, Dict[str, float]],
                   measured) -> List[str]:
    """The headline in words: KD's gain over no KD, each language's gap to its teacher, speed-up and size ratio."""
    runs = [r for r in spec.runs if not r.teacher and all_scores.get(r.name)]
    base = next((r for r in runs if r.baseline is None), None)
    if base is None:
        return []
    lines = ["", "**Summary** (dev, mean over seeds):"]
    for run in runs:
        if run is not base:
            gain = statistics.mean(all_scores[run.name]) - statistics.mean(all_scores[base.name])
            lines.append(f"- {run.name}: {gain:+.2f} F1 over {base.name}.")
    for teacher in (r for r in spec.runs if r.teacher and r.lang):
        own = language_scores.get(teacher.name, {}).get(teacher.lang)
        if own is None:
            continue
        gaps = ", ".join(f"{r.name} {own - language_scores[r.name][teacher.lang]:.2f}" for r in runs
                         if teacher.lang in language_scores.get(r.name, {}))
        lines.append(f"- {teacher.lang} dev: the teacher {own:.2f} F1; the students below it by: {gaps}.")
    if measured:
        rows, _ = measured
        is_teacher = {r.name: r.teacher for r in spec.runs}
        teacher_rows = [row for name, row in rows if is_teacher.get(name)]
        student_rows = [row for name, row in rows if not is_teacher.get(name)]
        if teacher_rows and student_rows:
            t, st = teacher_rows[0], student_rows[-1]
            lines.append(f"- A student runs {st['sentences_per_second'] / t['sentences_per_second']:.1f}x faster than a teacher"
                         f" ({st['sentences_per_second']:.0f} against {t['sentences_per_second']:.0f} sentences/s) and is"
                         f" {t['parameters'] / st['parameters']:.0f}x smaller ({st['parameters']:,} against {t['parameters']:,}"
                         " parameters, the teacher's frozen encoder included).")
    return lines


def _finished_rows(text: str) -> Dict[str, int]:
    """The table rows of a results page that hold results: first cell -> its number of seeds (0 where the
    row has no seeds column)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) < 2 or set(cells[1]) <= set("-") or "(not run)" in line:
            continue
        rows[cells[0]] = int(cells[2]) if len(cells) > 2 and cells[2].isdigit() else 0
    return rows


def _publish(name: str, lines: List[str]) -> str:
    """
    Write one page of docs/results/, rebuild docs/results.md, print the page. A page is never
    replaced by one that lacks some of its finished rows, or has fewer seeds in one (a table made
    from a runs folder that lacks those runs, or by `run --seeds 3` after seeds 1 and 2): the page
    is kept, and the new text only printed.
    """
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(layout.REPO, "docs", "results"), exist_ok=True)
    path = os.path.join(layout.REPO, "docs", "results", name)
    if os.path.isfile(path):
        with open(path) as handle:
            old_rows = _finished_rows(handle.read())
        new_rows = _finished_rows(text)
        lost = sorted(name for name, seeds in old_rows.items() if name not in new_rows or new_rows[name] < seeds)
        if lost:
            print(text)
            print(f"NOT WRITTEN: {path} keeps its results; the runs found lack {len(lost)} of its finished rows, or "
                  f"some of their seeds ({', '.join(lost)}). Point --runs-dir at the runs that made it, finish those "
                  "runs, or table every seed: python -m allennlp_structkd.experiments table SUITE --seeds ...",
                  file=sys.stderr)
            return text
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    write_index()
    print(text)
    return text


def write_index() -> None:
    """docs/results.md: every suite's table (full runs only), each with the command that made it."""
    folder = os.path.join(layout.REPO, "docs", "results")
    parts = [
        "# Results on real data",
        "",
        "Dev splits only (the official test sets are kept elsewhere). Each table below is written by",
        "`python -m allennlp_structkd.experiments run SUITE` (or `table SUITE` from finished runs) with",
        "`STRUCTKD_DATA_DIR` pointing at corpora laid out like `../shared/data`; the runs' configs, logs and",
        "metrics are kept under `runs/experiments/SUITE/`. CPU only, 2 cores.",
        "",
    ]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".md") and not name.endswith("_quick.md"):
            with open(os.path.join(folder, name)) as handle:
                # images sit beside the suite's page, in docs/results/
                parts.append("".join(line.replace("](", "](results/") if line.startswith("![") else line
                                     for line in handle.readlines()))
    target = os.path.join(layout.REPO, "docs", "results.md")
    with open(target + ".tmp", "w") as handle:
        handle.write("\n".join(parts))
    os.replace(target + ".tmp", target)

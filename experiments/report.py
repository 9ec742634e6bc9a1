"""The results pages: a suite's table (dev, test, ASO marks, summary), the wall-time table, docs/results.md.
"""
import concurrent.futures
import glob
import json
import math
import os
import statistics
from typing import Dict, List, Optional, Tuple

from experiments import evaluation, layout, speed
from experiments.catalogue import SUITES
from experiments.layout import RUNS_OF
from experiments.pages import publish_page
from experiments.plots import plot_curves, plot_retention
from experiments.scores import mean_std, parse_duration, read_record, run_metrics, run_scores, wall_seconds
from experiments.suite import Run, Suite, TeacherRef

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
    data_dir, test = layout.data_root(), {}
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
    # one thread each, as the training runs: several 2-thread torch processes on 2 cores spin-wait for each other
    env = dict(os.environ, **spec.env, OMP_NUM_THREADS="1")
    # every evaluation first, ``workers`` at a time (each is a subprocess, cached in its run's folder)
    targets = [(lang, data, spec.eval_metric) for lang, data in languages.items()] + (
        [("test", test_path, test_metric)] if test_path else [])
    jobs = [(layout.run_dir(runs_dir, suite, run, seed, quick), data, metric, name)
            for run in spec.runs for seed in spec.seeds_of(run, seeds) for name, data, metric in targets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        evaluated = dict(zip([(job[0], job[3]) for job in jobs],
                             pool.map(lambda job: evaluation.evaluate_run(job[0], job[1], env, job[2], job[3]), jobs)))
    teachers_of = teachers_by_language(spec)
    share = bool(teachers_of) and bool(languages)  # the "% of teacher" column: per-language teachers to compare with
    flags = f" {spec.command_flags}" if spec.command_flags else ""
    lines = [
        f"## Suite `{suite}`{' (quick)' if quick else ''}",
        "",
        spec.description,
        "",
        f"Produced by `STRUCTKD_DATA_DIR=<data> {spec.command_env}python -m experiments run {suite}"
        f" --seeds {' '.join(map(str, seeds))}{' --quick' if quick else ''}{flags}`; dev splits; {spec.metric_name} ×100,"
        f" mean ± standard deviation over seeds{'' if spec.teacher_seeds else ' (teachers: first seed only)'}. †: the method is almost"
        " stochastically dominant over its baseline (Almost Stochastic Order, `deepsig.aso`, ε_min < 0.5 at"
        " confidence 0.95; the ε_min column), computed when both have at least 2 seeds.",
        "",
    ]
    for note in spec.notes:  # what the prepare steps found in the data (e.g. transfer sentences dropped)
        if os.path.isfile(note):
            with open(note, encoding="utf-8") as handle:
                lines.append(f"- Data, {handle.read().strip()}")
    if any(os.path.isfile(note) for note in spec.notes):
        lines.append("")
    lines += [
        f"| model | {spec.metric_name} | seeds | ε_min vs baseline |"
        + "".join(f" {name} |" for _, name in also) + "".join(f" {lang} |" for lang in languages)
        + (" % of teacher |" if share else "") + (" test |" if test_path else "") + " params | epochs (best) |",
        "|---|---|---|---|" + "---|" * (len(also) + len(languages) + share + bool(test_path)) + "---|---|",
    ]
    all_scores: Dict[str, List[float]] = {}
    language_scores: Dict[str, Dict[str, float]] = {}  # run -> lang -> mean dev score on that language
    epsilons: Dict[str, float] = {}
    for run in spec.runs:
        scores, params, best = run_scores(spec, suite, run, seeds, quick, runs_dir)
        all_scores[run.name] = scores
        if not scores:
            lines.append(f"| {run.name} | (not run) | 0 | |" + " |" * (len(also) + len(languages) + share + bool(test_path))
                         + " | |")
            continue
        cells = ""
        for key, _ in also:
            values = [100 * m[key] for m in run_metrics(spec, suite, run, seeds, quick, runs_dir) if key in m]
            cells += f" {mean_std(values)} |"
        for lang in languages:
            values = [evaluated[layout.run_dir(runs_dir, suite, run, seed, quick), lang]
                      for seed in spec.seeds_of(run, seeds)]
            values = [100 * v for v in values if v is not None]
            # a run whose archive is gone (brought back from another machine without it) has fewer: say so
            fewer = f" ({len(values)} of {len(scores)} seeds)" if values and len(values) < len(scores) else ""
            cells += f" {statistics.mean(values):.2f}{fewer} |" if values else " |"
            if values:
                language_scores.setdefault(run.name, {})[lang] = statistics.mean(values)
        if share:
            cells += f" {_share_of_teacher(run, language_scores, teachers_of)} |"
        if test_path:
            values = [evaluated[layout.run_dir(runs_dir, suite, run, seed, quick), "test"]
                      for seed in spec.seeds_of(run, seeds)]
            cells += f" {mean_std([100 * v for v in values if v is not None])} |"
        spread = f" ± {statistics.stdev(scores):.2f}" if len(scores) > 1 else ""
        significance, mark = "", ""
        base = all_scores.get(run.baseline or "", [])
        if len(scores) >= 2 and len(base) >= 2:
            from deepsig import aso

            eps = aso(scores, base, confidence_level=0.95, seed=1234, show_progress=False)
            epsilons[run.name] = eps
            significance, mark = f"{eps:.2f}", " †" if eps < 0.5 else ""
        lines.append(f"| {run.name} | {statistics.mean(scores):.2f}{spread}{mark} | {len(scores)} | {significance} |"
                     f"{cells} {params or ''} | {best} |")
    seconds = sum(parse_duration(m.get("training_duration", "0:0:0")) for run in spec.runs
                  for m in run_metrics(spec, suite, run, seeds, quick, runs_dir))
    lines += ["", f"Training time of these runs, summed (AllenNLP's `training_duration`: reading data and annotating it"
                  f" with the teacher come before it and are not counted): {seconds / 3600:.1f} h on {spec.machine}."]
    record = os.path.join(layout.suite_folder(runs_dir, suite, quick), "suite_wall_seconds.json")
    if os.path.isfile(record):
        with open(record) as handle:
            wall = json.load(handle)
        lines.append(f"Wall time of `run {suite}` (encoder features, teachers, students, up to the table; "
                     f"--workers {wall['workers']}, seeds {' '.join(map(str, wall['seeds']))}"
                     f"{', some runs only' if wall.get('only') else ''}): {wall['seconds_before_table'] / 60:.0f} min, "
                     f"finished {wall['finished']}{wall.get('note', '')}"
                     + (f"; it trained {wall['runs'] - wall['found_finished']} of the {wall['runs']} runs, the others "
                        "were finished by earlier commands (their time is in the sum above)" if wall.get("found_finished")
                        else "") + ".")
    if spec.summary:  # the headline page: KD's gain, the gap to the teachers, speed and size, on one page
        measured = speed.speed_rows(suite, seeds, runs_dir) if not quick else None
        lines += summary_lines(spec, all_scores, language_scores, measured if measured and measured[0] else None, epsilons)
        lines += goal_lines(spec, all_scores, language_scores, measured if measured and measured[0] else None, epsilons,
                             os.path.join(layout.suite_folder(runs_dir, suite, quick), "suite_wall_seconds.json"))
        if measured and measured[0]:
            lines += ["", *speed.speed_lines(suite, seeds, *measured, lead="Speed and size: ")]
    folder = layout.pages_folder(runs_dir, suite, quick)
    if spec.transfer_of:
        lines += retention_lines(suite, spec, language_scores, teachers_of, folder, quick)
    curve = None if spec.transfer_of else plot_curves(suite, spec, all_scores, quick, folder)
    if curve:
        lines += ["", f"![{spec.metric_name} against the amount of unlabeled data]({curve})"]
    return publish_page(f"{suite}{'_quick' if quick else ''}.md", lines, folder)


def wall_time_table(runs_dir: str) -> str:
    """What the full set costs on this machine: every suite's finished runs, their wall and training time."""
    lines = [
        "## Wall time of the full set",
        "",
        "Produced by `python -m experiments walltime` from the finished runs under `runs/experiments/`"
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
        folder = layout.suite_folder(runs_dir, suite)
        if not os.path.isdir(folder):
            continue
        wall = train = 0.0
        count = 0
        for metrics in sorted(glob.glob(os.path.join(folder, "*", "seed_*", "metrics.json"))):
            directory = os.path.dirname(metrics)
            seconds = wall_seconds(directory)
            train += parse_duration(read_record(metrics).get("training_duration", "0:0:0"))
            wall += seconds or 0.0
            count += 1
        if not count:
            continue
        total_wall, total_train, total_runs = total_wall + wall, total_train + train, total_runs + count
        lines.append(f"| {suite} | {count} | {wall / 3600:.1f} h | {train / 3600:.1f} h | {wall / 7200:.1f} h |")
    lines.append(f"| **all** | {total_runs} | {total_wall / 3600:.1f} h | {total_train / 3600:.1f} h |"
                 f" {total_wall / 7200:.1f} h |")
    return publish_page("walltime.md", lines)


def _share_of_teacher(run: Run, language_scores: Dict[str, Dict[str, float]], teachers_of: Dict[str, Run]) -> str:
    """A row's score on each language over that language's teacher's score there, ×100 (a teacher: its own language)."""
    parts = []
    for lang, teacher in teachers_of.items():
        own = language_scores.get(teacher.name, {}).get(lang)
        score = language_scores.get(run.name, {}).get(lang)
        if own and score is not None and (not run.teacher or run is teacher):
            parts.append(f"{lang} {100 * score / own:.1f}")
    return ", ".join(parts)


def _distils(run: Run) -> bool:
    """Whether a run learns from teachers (a KD student)."""
    return not run.teacher and any(isinstance(value, TeacherRef) for value in run.env.values())


def summary_lines(spec: Suite, all_scores: Dict[str, List[float]], language_scores: Dict[str, Dict[str, float]],
                   measured, epsilons: Optional[Dict[str, float]] = None) -> List[str]:
    """
    The headline in words: each student's gain over its baseline, each language's teacher and what share
    of it each student keeps, and how much faster and smaller the students are than a teacher (its encoder
    included).
    """
    epsilons = epsilons or {}
    students = [r for r in spec.runs if not r.teacher and all_scores.get(r.name)]
    if not students:
        return []
    lines = ["", "**Summary** (dev, mean over seeds):"]
    for run in students:
        if run.baseline and all_scores.get(run.baseline):
            gain = statistics.mean(all_scores[run.name]) - statistics.mean(all_scores[run.baseline])
            eps = f" (ε_min {epsilons[run.name]:.2f})" if run.name in epsilons else ""
            lines.append(f"- {run.name}: {gain:+.2f} F1 over {run.baseline}{eps}.")
    for lang, teacher in teachers_by_language(spec).items():
        own = language_scores.get(teacher.name, {}).get(lang)
        if own is None:
            continue
        kept = ", ".join(f"{r.name} {100 * language_scores[r.name][lang] / own:.1f}%" for r in students
                         if lang in language_scores.get(r.name, {}))
        lines.append(f"- {lang} dev: the teacher {own:.2f} F1; what the students keep of it: {kept}.")
    lines += _spacy_lines(spec, all_scores, measured)
    if measured:
        rows, _ = measured
        is_teacher = {r.name: r.teacher for r in spec.runs}
        teacher_rows = [row for name, row in rows if is_teacher.get(name)]
        if teacher_rows:
            t = teacher_rows[0]
            for name, row in rows:
                if not is_teacher.get(name) and any(r.name == name and _distils(r) for r in spec.runs):
                    lines.append(f"- {name} runs {row['sentences_per_second'] / t['sentences_per_second']:.1f}x faster"
                                 f" than a teacher ({row['sentences_per_second']:.0f} against {t['sentences_per_second']:.0f}"
                                 f" sentences/s) and is {t['parameters'] / row['parameters']:.0f}x smaller"
                                 f" ({row['parameters']:,} against {t['parameters']:,} parameters, the teacher's frozen"
                                 " encoder included).")
    return lines


def _spacy_lines(spec: Suite, all_scores: Dict[str, List[float]], measured) -> List[str]:
    """What distilling gives over spaCy's own pipeline on the same labeled sentences: the best KD student's F1 over
    it, and their speeds and sizes."""
    students = [r for r in spec.runs if _distils(r) and all_scores.get(r.name)]
    if not students:
        return []
    best = max(students, key=lambda r: statistics.mean(all_scores[r.name]))
    found = dict(measured[0]) if measured else {}
    lines = []
    for run in spec.runs:
        if run.spacy is None or not all_scores.get(run.name):
            continue
        gain = statistics.mean(all_scores[best.name]) - statistics.mean(all_scores[run.name])
        line = f"- {best.name}: {gain:+.2f} F1 over {run.name}, trained on the same labeled sentences"
        if run.name in found and best.name in found:
            ours, theirs = found[best.name], found[run.name]
            line += (f"; it tags {ours['sentences_per_second'] / theirs['sentences_per_second']:.2f}x as many sentences a"
                     f" second ({ours['sentences_per_second']:.0f} against {theirs['sentences_per_second']:.0f}, one CPU"
                     f" thread) with {ours['parameters'] / theirs['parameters']:.2f}x its parameters"
                     f" ({ours['parameters']:,} against {theirs['parameters']:,})")
        lines.append(line + ".")
    return lines


def _lines_in(path: str) -> Optional[int]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def retention_points(spec: Suite, language_scores: Dict[str, Dict[str, float]],
                     teachers_of: Dict[str, Run]) -> Dict[str, List[Tuple[float, float]]]:
    """``{"<series>, <lang>": [(transfer sentences kept, % of that language's teacher), ...]}`` of a retention
    suite's finished runs; each series starts at 0 with its runs' common baseline (the student without KD)."""
    points: Dict[str, List[Tuple[float, float]]] = {}
    by_name = {run.name: run for run in spec.runs}
    for name, files in spec.transfer_of.items():
        run = by_name[name]
        assert run.curve is not None  # a retention run is a point of a curve
        for lang, teacher in teachers_of.items():
            own, score, kept = language_scores.get(teacher.name, {}).get(lang), language_scores.get(name, {}).get(lang), \
                _lines_in(files[lang])
            if own and score is not None and kept is not None:
                points.setdefault(f"{run.curve[0]}, {lang}", []).append((float(kept), 100 * score / own))
            base = language_scores.get(run.baseline or "", {}).get(lang)
            key = f"{run.curve[0]}, {lang}"
            if own and base is not None and key in points and all(x != 0.0 for x, _ in points[key]):
                points[key].append((0.0, 100 * base / own))
    return {key: sorted(values) for key, values in points.items()}


def crossing(points: List[Tuple[float, float]], goal: float) -> str:
    """Where a curve first reaches ``goal`` (interpolated between measured points), or by how much its last
    point falls short and where a log-linear fit through its points with transfer text projects it."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y0 < goal <= y1:
            return f"reaches {goal:g}% at about {x0 + (goal - y0) * (x1 - x0) / (y1 - y0):,.0f} transfer sentences (interpolated)"
    if points and points[0][1] >= goal:
        return f"is at or above {goal:g}% from its first point"
    last_x, last_y = points[-1]
    text = f"stays below {goal:g}%: its last point ({last_x:,.0f} sentences) keeps {last_y:.1f}%, {goal - last_y:.1f} short"
    fitted = [(math.log(x), y) for x, y in points if x > 0]
    if len(fitted) >= 2:
        mean_x, mean_y = statistics.mean(x for x, _ in fitted), statistics.mean(y for _, y in fitted)
        spread = sum((x - mean_x) ** 2 for x, _ in fitted)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in fitted) / spread if spread else 0.0
        if slope > 0:
            needed = math.exp(mean_x + (goal - mean_y) / slope)
            text += (f"; a fit of share against log(sentences) through its {len(fitted)} points with transfer text "
                     f"(+{slope * math.log(2):.2f} points per doubling) projects {goal:g}% at about {needed:,.0f} "
                     "sentences, a projection beyond what was measured")
        else:
            text += "; its points with transfer text do not rise, so no projection"
    return text


def retention_lines(suite: str, spec: Suite, language_scores: Dict[str, Dict[str, float]], teachers_of: Dict[str, Run],
                    folder: str, quick: bool) -> List[str]:
    """A retention suite's reading: each curve's points, where it reaches the goal (95%), and its plot."""
    points = retention_points(spec, language_scores, teachers_of)
    if not points:
        return []
    goal = spec.goals.get("share_of_teacher", 95.0)
    lines = ["", "**Retention** (`% of teacher` on dev against the transfer sentences kept; 0: the student without KD):"]
    for key, series in sorted(points.items()):
        shown = ", ".join(f"{x:,.0f}: {y:.1f}%" for x, y in series)
        lines.append(f"- {key}: {shown}; it {crossing(series, goal)}.")
    image = plot_retention(suite, points, goal, folder, quick)
    lines += ["", f"![% of teacher against transfer sentences]({image})"]
    return lines


def teachers_by_language(spec: Suite) -> Dict[str, Run]:
    """``{lang: its teacher run}``: the per-language teachers, or one multilingual teacher for every language of
    ``spec.per_language``; empty when the suite has neither."""
    teachers_of = {run.lang: run for run in spec.runs if run.teacher and run.lang}
    teachers = [run for run in spec.runs if run.teacher]
    if not teachers_of and len(teachers) == 1:
        teachers_of = {lang: teachers[0] for lang in spec.per_language}
    return teachers_of


def goal_lines(spec: Suite, all_scores, language_scores, measured, epsilons, wall_record: str) -> List[str]:
    """
    The suite's goals, each met or missed by how much, for its best KD student (the highest mean share of the
    teachers' F1 over languages). Where the student has a reference row (the same student on the transfer text's
    gold labels), the page says what share that reference keeps: how much of the gap to the teachers
    distillation could close at all with these sentences.
    """
    goals = spec.goals
    students = [r for r in spec.runs if _distils(r) and all_scores.get(r.name)]
    teachers = teachers_by_language(spec)
    if not goals or not students or not teachers:
        return []

    def shares(name):
        return {lang: 100 * language_scores[name][lang] / language_scores[t.name][lang] for lang, t in teachers.items()
                if lang in language_scores.get(name, {}) and lang in language_scores.get(t.name, {})}

    best = max(students, key=lambda r: statistics.mean(shares(r.name).values()) if shares(r.name) else 0.0)
    lines = ["", f"**Goals**, for the best KD student, {best.name}:"]

    def verdict(value, goal, unit, higher=True):
        met = value >= goal if higher else value <= goal
        return f"{value:.1f}{unit} (goal {'≥' if higher else '≤'} {goal:g}{unit}: " + (
            "met)" if met else f"missed by {abs(goal - value):.1f}{unit})")

    if "share_of_teacher" in goals and shares(best.name):
        lines.append("- share of its teacher's dev F1: " + "; ".join(
            f"{lang} {verdict(share, goals['share_of_teacher'], '%')}" for lang, share in shares(best.name).items()) + ".")
        reference = next((r for r in spec.runs if not r.teacher and "gold" in r.name and r.baseline == best.baseline
                          and all_scores.get(r.name)), None)
        if reference is not None and shares(reference.name) and best.baseline and shares(best.baseline):
            base, ref, ours = shares(best.baseline), shares(reference.name), shares(best.name)
            lines.append(f"- the same student on the gold labels of the transfer text ({reference.name}) keeps "
                         + ", ".join(f"{lang} {share:.1f}%" for lang, share in ref.items())
                         + " of the teachers: what these sentences' labels could give this student at most. Distillation "
                         + "recovers " + ", ".join(f"{lang} {100 * (ours[lang] - base[lang]) / max(1e-9, ref[lang] - base[lang]):.0f}%"
                                                   for lang in ref if lang in base and lang in ours)
                         + " of that reference's gain over the student without KD: the shortfall is this student's on these "
                         "sentences, not the distillation's.")
    # goals for the teachers themselves (``teacher_f1_<lang>``): a score a reference teacher reached on the same data
    teacher_goals = {key[len("teacher_f1_"):]: value for key, value in goals.items() if key.startswith("teacher_f1_")}
    reached = [f"{lang} {verdict(language_scores[t.name][lang], teacher_goals[lang], ' F1')}" for lang, t in teachers.items()
               if lang in teacher_goals and lang in language_scores.get(t.name, {})]
    if reached:
        lines.append("- its teachers' dev F1 (the mean of their seeds) above the reference teachers' of the description: "
                     + "; ".join(reached) + ".")
    if best.baseline and all_scores.get(best.baseline) and "kd_gain" in goals:
        gain = statistics.mean(all_scores[best.name]) - statistics.mean(all_scores[best.baseline])
        eps = epsilons.get(best.name)
        lines.append(f"- over the same student without KD: {verdict(gain, goals['kd_gain'], ' F1')}"
                     + (f", ε_min {eps:.2f} (goal < 0.5: {'met' if eps < 0.5 else 'missed'})" if eps is not None else "") + ".")
    if measured:
        rows = dict(measured[0])
        teacher_rows = [rows[t.name] for t in teachers.values() if t.name in rows]
        if best.name in rows and teacher_rows:
            speed = min(rows[best.name]["sentences_per_second"] / t["sentences_per_second"] for t in teacher_rows)
            size = min(t["parameters"] / rows[best.name]["parameters"] for t in teacher_rows)
            if "speedup" in goals:
                lines.append(f"- faster than its teachers on one CPU thread: {verdict(speed, goals['speedup'], 'x')}.")
            if "size_ratio" in goals:
                lines.append(f"- fewer parameters than its teachers, their encoder counted: {verdict(size, goals['size_ratio'], 'x')}.")
    if "wall_minutes" in goals and os.path.isfile(wall_record):
        with open(wall_record) as handle:
            minutes = json.load(handle)["seconds_before_table"] / 60
        lines.append(f"- the suite's wall time on 2 cores: {verdict(minutes, goals['wall_minutes'], ' min', higher=False)}.")
    return lines

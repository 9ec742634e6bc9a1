"""What finished runs hold: their metrics, scores over seeds, wall times.
"""
import json
import os
import statistics
from typing import Dict, List, Optional

from experiments import layout
from experiments.suite import Run, Suite


def wall_seconds(directory: str) -> Optional[float]:
    """A finished run's wall time: recorded by the runner, or (older runs) config.json to model.tar.gz."""
    recorded = os.path.join(directory, "wall_seconds.json")
    if os.path.isfile(recorded):
        with open(recorded) as handle:
            return float(json.load(handle)["wall_seconds"])
    first, last = os.path.join(directory, "config.json"), os.path.join(directory, "model.tar.gz")
    if os.path.isfile(first) and os.path.isfile(last):
        return max(0.0, os.path.getmtime(last) - os.path.getmtime(first))
    return None


def parse_duration(text: str) -> float:
    """Seconds of an AllenNLP duration such as ``"0:14:40.079283"`` or ``"1 day, 2:00:00"``."""
    days = 0
    if "day" in text:
        head, text = text.split(",", 1)
        days = int(head.split()[0])
    hours, minutes, secs = text.strip().split(":")
    return days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)


def mean_std(values: List[float]) -> str:
    if not values:
        return ""
    return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def run_metrics(suite: str, run: Run, seeds: List[int], quick: bool, runs_dir: str) -> List[Dict]:
    """The ``metrics.json`` of each finished seed of a run."""
    found = []
    for seed in (seeds[:1] if run.teacher else seeds):
        path = os.path.join(layout.run_dir(runs_dir, suite, run, seed, quick), "metrics.json")
        if os.path.isfile(path):
            with open(path) as handle:
                found.append(json.load(handle))
    return found


def run_scores(spec: Suite, suite: str, run: Run, seeds: List[int], quick: bool, runs_dir: str):
    """``(scores ×100 per finished seed, parameter count, best epochs)`` of one run of a suite."""
    scores, params, best = [], None, []
    for seed in (seeds[:1] if run.teacher else seeds):
        path = os.path.join(layout.run_dir(runs_dir, suite, run, seed, quick), "metrics.json")
        if not os.path.isfile(path):
            continue
        with open(path) as handle:
            metrics = json.load(handle)
        evaluation = os.path.join(os.path.dirname(path), "evaluation.json")
        if run.evaluate_on and os.path.isfile(evaluation):
            with open(evaluation) as handle:
                scores.append(100 * json.load(handle)[spec.eval_metric])
        else:
            scores.append(100 * metrics[spec.metric])
        best.append(metrics.get("best_epoch"))
        params = params or parameter_count(os.path.dirname(path))
    return scores, params, best


def parameter_count(directory: str) -> Optional[str]:
    """The parameters of a run's best weights: ``best.th``, or the archive's ``weights.th`` where only the
    archive was kept (runs brought back from another machine)."""
    import tarfile

    import torch

    weights, archive = os.path.join(directory, "best.th"), os.path.join(directory, "model.tar.gz")
    if os.path.isfile(weights):
        state = torch.load(weights, map_location="cpu")
    elif os.path.isfile(archive):
        with tarfile.open(archive) as handle:
            member = handle.extractfile("weights.th")
            if member is None:  # an archive without weights: no parameters to count
                return None
            state = torch.load(member, map_location="cpu")
    else:
        return None
    return f"{sum(v.numel() for k, v in state.items() if not k.startswith('_')):,}"

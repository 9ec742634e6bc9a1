"""The suites' figures: score against unlabeled data, score against speed-up.
"""
import itertools
import os
import statistics
from typing import Dict, List, Optional, Tuple

from experiments.suite import Suite


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(suite: str, spec: Suite, all_scores: Dict[str, List[float]], quick: bool, folder: str) -> Optional[str]:
    """
    The suite's score against the amount of unlabeled data (Figure 1 of Wang et al. 2021): one line
    per series of runs with a ``curve`` point, mean ± standard deviation over seeds. Returns the
    image's file name (in ``folder``, beside the page), or None when the suite has no such runs.
    """
    series: Dict[str, List[Tuple[float, List[float]]]] = {}
    for run in spec.runs:
        if run.curve and all_scores.get(run.name):
            series.setdefault(run.curve[0], []).append((run.curve[1], all_scores[run.name]))
    if not series:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for name, points in sorted(series.items()):
        points.sort()
        means = [statistics.mean(v) for _, v in points]
        spreads = [statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in points]
        axes.errorbar([x for x, _ in points], means, yerr=spreads, marker="o", capsize=3, label=name)
    axes.set_xlabel("unlabeled sentences")
    axes.set_ylabel(spec.metric_name)
    axes.set_title(f"suite {suite}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    name = f"{suite}{'_quick' if quick else ''}_unlabeled.png"
    os.makedirs(folder, exist_ok=True)
    figure.savefig(os.path.join(folder, name), dpi=120)
    plt.close(figure)
    return name


def plot_retention(suite: str, points: Dict[str, List[Tuple[float, float]]], goal: float, folder: str,
                   quick: bool = False) -> str:
    """``% of teacher`` against transfer sentences: ``points`` maps a series (e.g. "Struct. KD, es") to its
    (transfer sentences, share) points; a dashed line marks ``goal``."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for (name, series), marker in zip(sorted(points.items()), itertools.cycle("osD^vP*X")):
        series = sorted(series)
        axes.plot([x for x, _ in series], [y for _, y in series], marker=marker, label=name,
                  linestyle="--" if "gold" in name else "-")
    axes.axhline(goal, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("transfer sentences (a language)")
    axes.set_ylabel("% of teacher (dev span F1)")
    axes.set_title(f"suite {suite}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    name = f"{suite}{'_quick' if quick else ''}_share_of_teacher.png"
    os.makedirs(folder, exist_ok=True)
    figure.savefig(os.path.join(folder, name), dpi=120)
    plt.close(figure)
    return name


def plot_speed(suite: str, spec: Suite, rows: List[Tuple[str, float, float]], folder: str, quick: bool = False) -> str:
    """Score against speed-up over the first row (XtremeDistil's Figure 1): ``rows`` of (name, speed-up, score)."""
    from matplotlib.ticker import FuncFormatter

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4))
    for (name, speedup, score), marker in zip(rows, itertools.cycle("osD^vP*X")):
        axes.scatter([speedup], [score], marker=marker, s=50, label=name)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    axes.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
    axes.margins(x=0.15, y=0.15)
    axes.set_xlabel("speed-up over the first row (sentences/s, one CPU thread)")
    axes.set_ylabel(spec.metric_name)
    axes.set_title(f"suite {suite}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    name = f"{suite}{'_quick' if quick else ''}_speed.png"
    os.makedirs(folder, exist_ok=True)
    figure.savefig(os.path.join(folder, name), dpi=120, bbox_inches="tight")
    plt.close(figure)
    return name

"""Where a suite's things are: the data directory, the runs' folders, the results pages.
"""
import os
from typing import Iterable

from experiments.suite import Run

# the checkout, found from this folder (the tooling runs from it, beside the library) rather than by importing the
# library, so that help and listings start without loading AllenNLP; a test checks it is allennlp_structkd.paths.REPO
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "training_configs")


def data_root() -> str:
    path = os.environ.get("STRUCTKD_DATA_DIR")
    if not path or not os.path.isdir(path):
        raise SystemExit("set STRUCTKD_DATA_DIR to a folder laid out like ../shared/data (conll2002/, ud/<lang>/)")
    return path


def runs_root() -> str:
    return os.environ.get("STRUCTKD_RUNS_DIR", os.path.join(REPO, "runs", "experiments"))


# suites whose runs live in another suite's folder: the runs they share (same name, same config:
# the teachers, w/o KD, Top-WK, Pos.) are trained once
RUNS_OF = {"multilingual": "case1a", "headline_sgd": "label_scarce"}


def suite_folder(runs_dir: str, suite: str, quick: bool = False) -> str:
    """Quick runs live apart from full ones, so that neither is mistaken for the other."""
    return os.path.join(runs_dir, RUNS_OF.get(suite, suite) + ("_quick" if quick else ""))


def results_folder() -> str:
    """Where the results pages of full runs go: the repository's docs/results/."""
    return os.path.join(REPO, "docs", "results")


def pages_folder(runs_dir: str, suite: str, quick: bool) -> str:
    """Where a suite's page goes: docs/results/ for full runs; beside the runs for quick (smoke) runs, which
    must never replace a page of full results."""
    return os.path.join(suite_folder(runs_dir, suite, True), "results") if quick else results_folder()


def run_dir(runs_dir: str, suite: str, run: Run, seed: int, quick: bool = False) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in run.name).strip("_")
    return os.path.join(suite_folder(runs_dir, suite, quick), safe, f"seed_{seed}")


def words_file(instances: Iterable, target: str) -> str:
    """The words of ``instances`` (a reader's output), one sentence a line, written once, atomically."""
    if not os.path.isfile(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target + ".tmp", "w", encoding="utf-8") as handle:
            for instance in instances:
                handle.write(" ".join(instance["metadata"]["words"]) + "\n")
        os.replace(target + ".tmp", target)
    return target

"""
Reproducible experiment suites: train the teachers and students of a suite over several seeds,
evaluate them, and write a results table. This is the checkout's tooling beside the library (it is not
installed with ``allennlp_structkd``): run it from the repository root.

    python -m experiments run SUITE [--seeds 1 2 3] [--workers 2] [--quick] [--only RUN ...]
    python -m experiments table SUITE      # rebuild the table from finished runs [--overall-only]
    python -m experiments speed SUITE      # sentences/s and parameters, and score vs speed-up plot
    python -m experiments walltime         # every suite's summed wall and training time
    python -m experiments list             # the suites, and the cases inside them (case2a, ...)

Real corpora are found through ``STRUCTKD_DATA_DIR`` (a folder laid out like ``../shared/data``:
``conll2002/``, ``ud/<lang>/``). Each run is an ``allennlp train`` of one of the project's configs,
in ``runs/experiments/SUITE/NAME/seed_S/`` (``--runs-dir`` to change), with its config and metrics
kept there; a run whose ``metrics.json`` exists is not redone, and a killed run is resumed with
``allennlp train --recover``. Runs of a suite run in ``--workers`` parallel processes, teachers first.
The table (mean ± standard deviation over seeds, dev split) goes to
``docs/results/SUITE.md`` with the command that produced it; suites with runs on growing amounts of
unlabeled data (case3) also plot the score against that amount, and ``speed`` plots each model's
score against its speed-up over the teacher (PNG files beside the tables).
"""
import importlib
import importlib.util
from typing import Any

# names this package gives, from the module that defines each: imported on first use, so that `--help`, `list` and
# the demo job's help start without loading AllenNLP and torch
_EXPORTS = {
    "ALIASES": "catalogue", "SUITES": "catalogue", "resolve": "catalogue", "main": "cli",
    "cuda_device_of": "evaluation", "RUNS_OF": "layout", "run_dir": "layout",
    "summary_lines": "report", "test_data_path": "report", "wall_time_table": "report", "write_table": "report",
    "run_suite": "runner", "train_only": "runner", "Run": "suite", "Suite": "suite", "TeacherRef": "suite",
    "HEADLINE_LABELED": "suites_ner", "HEADLINE_TRANSFER": "suites_ner",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"experiments.{_EXPORTS[name]}"), name)
    if not name.startswith("_") and importlib.util.find_spec(f"experiments.{name}") is not None:  # a module of the package
        return importlib.import_module(f"experiments.{name}")
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")

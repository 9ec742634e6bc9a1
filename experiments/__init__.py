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
from experiments import evaluation, layout, pages, report, runner, scores, speed  # noqa: F401
from experiments.catalogue import ALIASES, SUITES, resolve  # noqa: F401
from experiments.cli import main  # noqa: F401
from experiments.evaluation import cuda_device_of  # noqa: F401
from experiments.layout import (
    RUNS_OF,  # noqa: F401
    run_dir,  # noqa: F401
)
from experiments.report import summary_lines, test_data_path, wall_time_table, write_table  # noqa: F401
from experiments.runner import run_suite, train_only  # noqa: F401
from experiments.suite import Run, Suite, TeacherRef  # noqa: F401
from experiments.suites_ner import HEADLINE_LABELED, HEADLINE_TRANSFER  # noqa: F401

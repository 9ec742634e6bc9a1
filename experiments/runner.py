"""Training a suite: one `allennlp train` per run and seed, in worker processes, resumed when killed.
"""
import concurrent.futures
import glob
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from typing import Dict, List, Optional, TextIO

from allennlp_structkd.commands import die_with_parent, exit_on_sigterm, run_allennlp
from allennlp_structkd.paths import CONFIGS, REPO
from experiments import layout, report
from experiments.catalogue import SUITES
from experiments.evaluation import evaluate_into, score_token_classifier, token_classifier_of
from experiments.scores import RunRecordError, read_record
from experiments.suite import FineTune, PrepareOptions, Run, SpacyTrain, TeacherRef


def train_job(job) -> str:
    config, directory, env, evaluate_on, *rest = job
    finetune: Optional[FineTune] = rest[0] if rest else None
    spacy_train: Optional[SpacyTrain] = rest[1] if len(rest) > 1 else None
    if finetune is not None:
        return finetune_only(finetune, directory, env)
    if spacy_train is not None:
        from experiments.spacy_baseline import train_run

        return train_run(spacy_train, directory, env)
    train_only(config, directory, env)
    if evaluate_on and not evaluate_into(directory, evaluate_on, os.path.join(directory, "evaluation.json"), env):
        raise RuntimeError(f"evaluation failed: {directory} on {evaluate_on}")
    return directory


def _has_checkpoint(directory: str) -> bool:
    """Whether a run folder holds anything a resume keeps: a finished epoch's weights or training state."""
    return any(glob.glob(os.path.join(directory, pattern))
               for pattern in ("model_state_e*.th", "training_state_e*.th", "best.th", "metrics_epoch_*.json"))


def archive_is_whole(directory: str) -> bool:
    """Whether a run's ``model.tar.gz`` is a complete archive (every byte of the gzip stream read back, with
    its config and weights), not one cut short by a kill."""
    try:
        with tarfile.open(os.path.join(directory, "model.tar.gz")) as archive:
            names = set(archive.getnames())
    except (OSError, EOFError, tarfile.TarError):
        return False
    return {"config.json", "weights.th"} <= names


def metrics_are_whole(directory: str) -> bool:
    """Whether a run's ``metrics.json`` is there and reads as a JSON object of metrics (a truncated file is not)."""
    path = os.path.join(directory, "metrics.json")
    if not os.path.isfile(path):
        return False
    try:
        read_record(path)
    except RunRecordError:
        return False
    return True


def token_classifier_is_whole(directory: str) -> bool:
    """Whether a fine-tuned run's Hugging Face folder is there with its config, weights and record (the tool
    writes it whole or not at all: it renames a finished folder into place)."""
    folder = token_classifier_of(directory)
    return all(os.path.isfile(os.path.join(folder, name)) for name in ("config.json", "training.json")) and any(
        os.path.isfile(os.path.join(folder, name)) for name in ("model.safetensors", "pytorch_model.bin"))


def run_is_finished(directory: str) -> bool:
    """A run is finished when it has its final metrics, readable, and a whole archive (a kill while the archive was
    written leaves the metrics and a broken file), or, fine-tuned, its whole Hugging Face folder, or, trained by
    spaCy, its chosen pipeline."""
    from experiments.spacy_baseline import pipeline_is_whole

    return metrics_are_whole(directory) and (archive_is_whole(directory) or token_classifier_is_whole(directory)
                                             or pipeline_is_whole(directory))


def _finetuned_with(directory: str, finetune: FineTune, seed: int) -> bool:
    """Whether the run's folder holds a token classifier fine-tuned with exactly these settings and seed."""
    if not token_classifier_is_whole(directory):
        return False
    try:
        with open(os.path.join(token_classifier_of(directory), "training.json"), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return False
    wanted = {"encoder": finetune.encoder, "seed": seed, "epochs": finetune.epochs, "lr": finetune.lr, "head_lr": finetune.head_lr,
              "batch_size": finetune.batch_size, "max_length": finetune.max_length, "train_layers": finetune.train_layers}
    return isinstance(record, dict) and all(record.get(key) == value for key, value in wanted.items())


def finetune_only(finetune: FineTune, directory: str, env: Dict[str, str]) -> str:
    """
    Fine-tune one teacher run (:mod:`experiments.finetune_token_classifier`, in a child process, its log beside the
    folder) unless the folder already holds that model, then score it on its dev data as students read it and write
    the run's ``metrics.json`` (``best_validation_<metric>``, ``best_epoch`` counted from 0 as AllenNLP counts,
    ``training_duration``).
    """
    seed = int(env.get("STRUCTKD_SEED", "1"))
    if run_is_finished(directory) and _finetuned_with(directory, finetune, seed):
        return directory
    os.makedirs(directory, exist_ok=True)
    if not _finetuned_with(directory, finetune, seed):
        log_path = directory + ".log"
        with open(log_path, "a", encoding="utf-8") as log:
            result = subprocess.run([sys.executable, "-m", "experiments.finetune_token_classifier",
                                     *finetune.arguments(token_classifier_of(directory), seed)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        if result.returncode != 0:
            raise RuntimeError(f"fine-tuning failed (exit {result.returncode}): {directory}. "
                               f"Last lines of {log_path}:\n{_log_tail(log_path)}")
    with open(os.path.join(token_classifier_of(directory), "training.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    import torch

    torch.set_num_threads(int(env.get("OMP_NUM_THREADS", "1")))  # this worker's share of the cores, as training's
    scores = score_token_classifier(token_classifier_of(directory), finetune.dev)
    seconds = int(record.get("seconds", 0))
    metrics: Dict[str, object] = {f"best_validation_{name}": value for name, value in scores.items()}
    metrics.update(best_epoch=int(record["best_epoch"]) - 1, training_epochs=int(record["epochs"]) - 1,
                   training_duration=f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")
    target = os.path.join(directory, "metrics.json")
    with open(target + ".tmp", "w") as handle:
        json.dump(metrics, handle, indent=2)
    os.replace(target + ".tmp", target)
    return directory


def _rearchive(directory: str) -> bool:
    """Write a run's archive again from its best weights, config and vocabulary (atomically); False if they
    are not all there."""
    if not all(os.path.exists(os.path.join(directory, name)) for name in ("best.th", "config.json", "vocabulary")):
        return False
    from allennlp.models.archival import archive_model

    target = os.path.join(directory, "model.tar.gz")
    archive_model(directory, weights="best.th", archive_path=target + ".tmp")
    os.replace(target + ".tmp", target)
    return archive_is_whole(directory)


def _log_tail(path: str, lines: int = 15) -> str:
    if not os.path.isfile(path):
        return ""
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def train_only(config, directory, env) -> str:
    """
    ``allennlp train`` of one run into ``directory``; a folder with a config resumes (``--recover``).
    A resume that fails leaves the folder exactly as it was and raises with the log's last lines;
    only a folder with no finished epoch (killed before its first checkpoint) is set aside (renamed
    ``*.interrupted-N``, never deleted) and the run started again.
    """
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    metrics = os.path.join(directory, "metrics.json")
    if run_is_finished(directory):
        return directory
    if os.path.isfile(metrics) and not metrics_are_whole(directory):  # damaged: kept aside (never deleted), resumed
        number = 1
        while os.path.exists(f"{metrics}.damaged-{number}"):
            number += 1
        os.replace(metrics, f"{metrics}.damaged-{number}")
    if os.path.isfile(metrics):  # its archive is broken: written again from the best weights, or the run resumed
        if _rearchive(directory):
            return directory
        os.replace(metrics, metrics + ".without-archive")  # resumed below; the old figures are kept aside
    log_path = directory + ".log"
    recover = os.path.isfile(os.path.join(directory, "config.json"))
    if recover and not _has_checkpoint(directory):
        number = 1
        while os.path.exists(f"{directory}.interrupted-{number}"):
            number += 1
        os.rename(directory, f"{directory}.interrupted-{number}")
        recover = False
    started = time.time()
    result = run_allennlp("train", config, "-s", directory, *(["--recover"] if recover else []), env=env, log=log_path)
    if result.returncode != 0:
        what = "resuming" if recover else "training"
        kept = f"; {directory} was left as it was (finished epochs kept): fix the cause and run again" if recover else ""
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {config} -> {directory}{kept}. "
                           f"Last lines of {log_path}:\n{_log_tail(log_path)}")
    # the whole run's wall time (reading, teacher annotation, training, archiving) for the wall-time table
    record = os.path.join(directory, "wall_seconds.json")
    with open(record + ".tmp", "w") as handle:  # atomically: a kill leaves the old record or the new one
        json.dump({"wall_seconds": time.time() - started, "recovered": recover}, handle)
    os.replace(record + ".tmp", record)
    return directory


def run_suite(suite: str, seeds: List[int], workers: int, quick: bool, runs_dir: str,
              only: Optional[List[str]] = None, test_dir: Optional[str] = None, drop_overlap: bool = False) -> None:
    """Train a suite's runs (teachers first), then write its table. ``only``: these runs and their teachers;
    ``drop_overlap``: transfer sentences that repeat a labeled, dev or test sentence are dropped (else an error)."""

    started = time.time()
    spec = SUITES[suite](quick)
    with SuiteLock(layout.suite_folder(runs_dir, suite, quick), suite):
        _run_suite(suite, spec, seeds, workers, quick, runs_dir, only, test_dir, drop_overlap, started)


class SuiteLock:
    """
    One runner at a time per suite folder: a second one fails at once, saying which process holds the suite
    (two would train into the same run folders and logs). An advisory ``flock`` on ``.runner.lock``: the system
    releases it when the holder dies, however it dies.
    """

    def __init__(self, folder: str, suite: str) -> None:
        self.path = os.path.join(folder, ".runner.lock")
        self.suite = suite
        self.handle: Optional[TextIO] = None

    def __enter__(self) -> "SuiteLock":
        import fcntl

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise SystemExit(f"suite {self.suite} is being run already, by {holder} (lock {self.path}): wait for that "
                             "run to end, or stop it, then run again (finished runs are kept)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.close()  # closing releases the lock
            self.handle = None


def _run_suite(suite, spec, seeds, workers, quick, runs_dir, only, test_dir, drop_overlap, started) -> None:
    from tqdm import tqdm

    cache = os.path.join(layout.suite_folder(runs_dir, suite, quick), "cache")
    base_env = dict(os.environ, **spec.env, STRUCTKD_CACHE=cache, OMP_NUM_THREADS="1")
    runs: List[Run] = spec.runs
    if only is not None:  # an empty selection is an error, never "all"
        unknown = sorted(set(only) - {r.name for r in runs})
        if unknown or not only:
            raise SystemExit(f"suite {suite} has no run named {', '.join(map(repr, unknown)) or '(none given)'}; its runs: "
                             + ", ".join(repr(r.name) for r in runs))
        # the named runs and the teachers they distil from
        needed = {teacher for r in runs if r.name in only for teacher in r.teachers}
        runs = [r for r in runs if r.name in only or r.name in needed]
    test_path = report.test_data_path(spec, test_dir) if test_dir else None
    test_files = tuple(json.loads(test_path).values()) if test_path and test_path.startswith("{") else (
        (test_path,) if test_path else ())
    options = PrepareOptions(drop_overlap=drop_overlap, test_files=test_files)
    for step in spec.prepare:  # the data files the runs read (each written once)
        step(options)
    # frozen-encoder features: computed once, batched, before any run reads them (else the first epoch
    # of each teacher computes them sentence by sentence)
    for config in spec.encode_first:
        from allennlp_structkd.encode_features import encode_config

        encode_config(os.path.join(CONFIGS, config), env=base_env)
    counts = {"runs": 0, "found_finished": 0}  # what this command trained, for the page's wall time
    stages = [[r for r in runs if r.teacher], [r for r in runs if not r.teacher]]
    for stage in [s for s in stages if s]:  # a suite may have no teachers (kr2)
        jobs = []
        # seed-major order: every model gets its first seed before any gets its second
        order = [(run, seed) for seed in seeds for run in stage if seed in spec.seeds_of(run, seeds)]
        for run, seed in order:
            env = dict(base_env, STRUCTKD_SEED=str(seed))
            # a student distils from its suite's teachers of the first seed, or of its own seed (teacher_seeds)
            teacher_seed = seed if spec.teacher_seeds else seeds[0]
            teacher_dirs = {r.name: teacher_model_path(r, layout.run_dir(runs_dir, suite, r, teacher_seed, quick))
                            for r in spec.runs if r.teacher}
            for name, value in run.env.items():
                env[name] = teacher_archive_path(value, teacher_dirs, runs_dir, quick) if isinstance(value, TeacherRef) else value
            directory = layout.run_dir(runs_dir, suite, run, seed, quick)
            jobs.append((os.path.join(CONFIGS, run.config), directory, env, run.evaluate_on, run.finetune, run.spacy))
            counts["runs"] += 1
            counts["found_finished"] += run_is_finished(directory)
        desc = f"{suite}: {'teachers' if stage[0].teacher else 'students'}"
        with StopRequests() as stop, concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, initializer=_worker_started) as pool:
            futures = [pool.submit(train_job, job) for job in jobs]
            try:
                with tqdm(total=len(futures), desc=desc, unit="run") as bar:
                    pending = set(futures)
                    while pending:
                        done, pending = concurrent.futures.wait(pending, timeout=0.5,
                                                                return_when=concurrent.futures.FIRST_COMPLETED)
                        for future in done:
                            future.result()
                            bar.update(1)
                        stop.check()
            except BaseException:  # Ctrl-C, SIGTERM, a failed run: no training goes on without the runner
                _stop_workers(pool, futures)
                raise
    # the whole command's time, up to the table, for the page (what `run SUITE` costs from scratch, or to resume)
    record = os.path.join(layout.suite_folder(runs_dir, suite, quick), "suite_wall_seconds.json")
    os.makedirs(os.path.dirname(record), exist_ok=True)
    with open(record + ".tmp", "w") as handle:
        json.dump({"seconds_before_table": time.time() - started, "seeds": seeds, "workers": workers,
                   "only": only, "finished": time.strftime("%Y-%m-%d %H:%M"), **counts}, handle)
    os.replace(record + ".tmp", record)
    report.write_table(suite, seeds, quick, runs_dir, test_dir=test_dir, workers=workers)


class StopRequests:
    """
    While the workers train, SIGINT and SIGTERM only note the request, and the runner acts on it where it
    waits (:meth:`check`). Raised at an arbitrary point of ``concurrent.futures`` (Python's default), the
    exception could leave a future's lock held, and the pool's shutdown would then wait forever for a
    thread that needs it. (Installed from the main thread only: a signal handler cannot be set elsewhere.)
    """

    def __enter__(self) -> "StopRequests":
        self.signum: Optional[int] = None
        self.previous: Dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum, frame) -> None:
        self.signum = signum

    def check(self) -> None:
        """Raise what the signal would have raised: KeyboardInterrupt for SIGINT, SystemExit for SIGTERM."""
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is not None:
            raise SystemExit(128 + self.signum)

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  # what signal.signal returned


def _worker_started() -> None:
    """A training worker: SIGTERM stops its `allennlp train` and ends the worker (the runner sends it when stopped);
    SIGINT (a Ctrl-C reaches the whole process group) interrupts it as usual, not as the runner's noted request; and
    a runner killed outright (SIGKILL) takes its workers and their trainings with it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_on_sigterm(at_once=True)
    die_with_parent()


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor, futures) -> None:
    """Cancel the runs not started, and stop the workers (each stops its ``allennlp train`` on SIGTERM)."""
    import multiprocessing

    for future in futures:
        future.cancel()
    for worker in multiprocessing.active_children():
        worker.terminate()
    for worker in multiprocessing.active_children():
        worker.join(timeout=15)
    pool.shutdown(wait=False, cancel_futures=True)


def teacher_model_path(run: Run, directory: str) -> str:
    """What students of a teacher run read: its archive, or the Hugging Face folder of a fine-tuned run."""
    return token_classifier_of(directory) if run.finetune is not None else os.path.join(directory, "model.tar.gz")


def teacher_archive_path(teacher: TeacherRef, teacher_models: Dict[str, str], runs_dir: str, quick: bool) -> str:
    """The archive (or Hugging Face folder) a :class:`TeacherRef` names: a teacher run of this suite
    (``teacher_models``: its path by run name), or the finished run (lowest seed) of another suite."""
    if teacher.suite is None:
        return teacher_models[teacher.run]
    folder = os.path.dirname(layout.run_dir(runs_dir, teacher.suite, Run(teacher.run, ""), 1, quick))
    finished = sorted(glob.glob(os.path.join(folder, "seed_*", "model.tar.gz")),
                      key=lambda path: int(os.path.basename(os.path.dirname(path))[len("seed_"):]))
    whole = [path for path in finished if archive_is_whole(os.path.dirname(path))]
    if not whole:
        broken = f" ({', '.join(finished)} not a whole archive)" if finished else ""
        raise SystemExit(f"teacher {teacher.run!r} of suite {teacher.suite} has no finished run under {folder}{broken}: "
                         f"run suite {teacher.suite} first")
    return whole[0]

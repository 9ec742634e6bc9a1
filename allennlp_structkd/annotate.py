"""
Fill the teacher-output cache of a KD config before training, split over worker processes.

    python -m allennlp_structkd.annotate CONFIG [DATA_PATH] [--workers 2] [-o OVERRIDES]
    python -m allennlp_structkd.annotate CONFIG [DATA_PATH] --engine ray [--address HOST:PORT] [--workers N]

CONFIG's ``dataset_reader`` must be a ``structkd_teacher`` reader; DATA_PATH defaults to the
config's ``train_data_path``. Each worker loads the teachers and annotates every N-th sentence,
writing to the same SQLite cache (one transaction per batch), so a killed run loses at most a
batch per worker and a rerun only annotates what is missing. Training then reads every teacher
output from the cache. A teacher given as a training config is trained first, once, in this process
(it says so, and where its log goes); the workers then only annotate.

``--engine local`` (the default) is that pool of processes on this machine: nothing beyond the package, no
start-up cost. ``--engine ray`` runs the teachers on Ray Data (``pip install 'allennlp-structkd[ray]'``): an actor
pool on this machine, or on a cluster with ``--address``, the caches written here; see
:mod:`allennlp_structkd.ray_annotation`. Both give the same targets.
"""
import argparse
import multiprocessing
import os
import time
from typing import cast

import torch


def _worker_started(lock) -> None:
    """A worker: one progress-bar lock shared by all (tqdm's pattern), and it ends when this command's process dies."""
    from tqdm import tqdm

    from allennlp_structkd.commands import die_with_parent

    tqdm.set_lock(lock)
    die_with_parent()


def _worker(args):
    config, overrides, data_path, shard, num_shards, threads = args
    torch.set_num_threads(threads)
    from allennlp.common import Params
    from allennlp.data import DatasetReader

    import allennlp_structkd  # noqa: F401
    from allennlp_structkd.config_defaults import ext_vars

    params = Params.from_file(config, overrides, ext_vars=ext_vars())
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    done = reader.annotate_shard(data_path, shard, num_shards, progress=True)
    return done, reader.teacher_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("data_path", nargs="?", default=None)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("-o", "--overrides", default="")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: worker processes on this machine; ray: a Ray Data actor pool (here, or a cluster)")
    parser.add_argument("--address", default=None, help="with --engine ray: a running Ray cluster (HOST:PORT, or auto)")
    parser.add_argument("--threads-per-worker", type=int, default=None,
                        help="torch threads in each worker (default: the cores, here or in the Ray cluster, shared "
                             "equally by the workers)")
    parser.add_argument("--wave-sentences", type=int, default=100_000,
                        help="with --engine ray: missing sentences read and annotated per wave (bounds memory)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.threads_per_worker is not None and args.threads_per_worker < 1:
        parser.error(f"--threads-per-worker must be at least 1, got {args.threads_per_worker}")
    if args.address is not None and args.engine != "ray":
        parser.error("--address needs --engine ray")
    if args.engine == "ray":
        from allennlp_structkd.ray_annotation import RayUnavailableError, check_address, import_ray
        try:  # before any teacher is loaded or trained: a missing extra or a dead address is said at once
            import_ray()
            if args.address is not None:
                check_address(args.address)
        except RayUnavailableError as error:
            raise SystemExit(f"annotate: {error}") from None

    from allennlp.common import Params

    import allennlp_structkd  # noqa: F401  (config defaults)
    from allennlp_structkd.config_defaults import ext_vars

    params = Params.from_file(args.config, args.overrides, ext_vars=ext_vars())
    if params["dataset_reader"].get("type") != "structkd_teacher":
        raise SystemExit(f"{args.config}: dataset_reader is not a structkd_teacher reader")
    data_path = args.data_path or params["train_data_path"]
    from allennlp.data import DatasetReader

    from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader
    reader = cast(TeacherAnnotatingReader, DatasetReader.from_params(params.duplicate().pop("dataset_reader")))
    for lang, said in reader.prepare_teachers([data_path]):  # teachers given as configs: trained here, once, first
        print(f"the teacher of {lang!r} is {said} done", flush=True)
    from allennlp_structkd.kd.cache import CacheWriteError

    if args.engine == "ray":
        from allennlp_structkd.ray_annotation import RayUnavailableError, annotate_with_ray

        started = time.time()
        try:
            sentences, computed = annotate_with_ray(params.duplicate().pop("dataset_reader").as_dict(quiet=True), data_path,
                                                    args.workers, args.address, args.wave_sentences,
                                                    threads_per_worker=args.threads_per_worker)
        except (CacheWriteError, RayUnavailableError) as error:
            raise SystemExit(f"annotate: {error}") from None
        print(f"\n{sentences} sentences: {computed} annotated by the teachers, {sentences - computed} already cached "
              f"({time.time() - started:.1f} s, {args.workers} Ray workers)")
        return
    threads = args.threads_per_worker or max(1, (os.cpu_count() or 1) // args.workers)
    jobs = [(args.config, args.overrides, data_path, shard, args.workers, threads) for shard in range(args.workers)]

    started = time.time()
    try:
        if args.workers == 1:
            results = [_worker(jobs[0])]
        else:
            # one progress-bar lock for every worker, made here (tqdm's pattern): a worker making its own leaks its
            # semaphore
            context = multiprocessing.get_context("spawn")
            lock = context.RLock()
            with context.Pool(args.workers, initializer=_worker_started, initargs=(lock,)) as pool:
                results = pool.map(_worker, jobs)
    except CacheWriteError as error:  # a read-only cache, a full disk: nothing was annotated in vain silently
        raise SystemExit(f"annotate: {error}") from None
    sentences = sum(r[0] for r in results)
    computed = sum(r[1] for r in results)
    print(f"\n{sentences} sentences: {computed} annotated by the teachers, {sentences - computed} already cached "
          f"({time.time() - started:.1f} s, {args.workers} workers)")


if __name__ == "__main__":
    main()

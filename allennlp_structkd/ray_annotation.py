"""
Annotation on Ray Data: the teachers' work spread over an actor pool, on this machine or a Ray cluster.

    python -m allennlp_structkd.annotate CONFIG [DATA_PATH] --engine ray [--workers N] [--address HOST:PORT]

This process (the driver) reads the data with the config's own readers (every format, every check and
every file-and-line error they give), looks each sentence up in the teacher caches, and puts the sentences
whose targets are missing into Ray's object store as blocks. A Ray dataset over those blocks is mapped
through a pool of actors, each holding the loaded teachers (one GPU each where the cluster has GPUs, CPU
actors otherwise); each actor returns its batch's targets, encoded, and the driver writes every batch into
the caches as one transaction. So the caches live where training reads them, and nothing but this process
writes them:

* a rerun, here or on another machine with the same caches, annotates only what is missing;
* a worker that dies loses its batch only: Ray restarts the actor and retries the batch, and what was
  already written stays valid;
* two runs on one cache at once write whole entries, once a key (SQLite transactions, a primary key).

Sentences go to the actors in the chunks the single-process path annotates (``batch_size`` sentences of the
input, each teacher's missing ones), so the targets are those of ``--engine local``, bit for bit.

Work is done in waves of ``--wave-sentences`` missing sentences (one actor pool each), so the driver's
memory and the object store stay bounded however large the transfer set. On a cluster, the config, its data
and the teachers must be at the same paths on every node (or on a shared file system); only the driver
needs the caches. Ray is an optional extra: ``pip install allennlp-structkd[ray]``.
"""
import json
import logging
import os
import socket
from typing import Dict, Iterator, List, Optional, Tuple

from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader

logger = logging.getLogger(__name__)

BLOCK_SENTENCES = 1024  # sentences a block of the dataset holds (whole chunks): the unit a worker loses at worst


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or no cluster answers at the address given."""


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailableError("--engine ray needs Ray Data: pip install 'allennlp-structkd[ray]' "
                                  "(or pip install 'ray[data]')") from None
    return ray


def check_address(address: str, timeout: float = 10.0) -> None:
    """A cluster address that does not answer is a clear error within ``timeout`` seconds (Ray itself waits long)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"--address {address!r} is not HOST:PORT (a Ray head node's GCS address, e.g. "
                                  "10.0.0.1:6379), 'auto' or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise RayUnavailableError(f"no Ray cluster answers at {address} ({error}); start one with `ray start --head` "
                                  "there, or leave --address out to run Ray on this machine") from None


class _TeacherActor:
    """One worker of the pool: the config's reader with its teachers loaded; a batch in, its encoded targets out."""

    def __init__(self, reader_params: Dict, threads: int) -> None:
        import torch
        from allennlp.common import Params
        from allennlp.data import DatasetReader

        import allennlp_structkd  # noqa: F401  (the registrations)

        torch.set_num_threads(threads)
        reader = DatasetReader.from_params(Params(json.loads(json.dumps(reader_params))))
        assert isinstance(reader, TeacherAnnotatingReader)
        self.reader = reader

    def __call__(self, batch: Dict) -> Dict[str, List]:
        from allennlp_structkd.kd.cache import encode_entry
        from allennlp_structkd.kd.targets import split_shared

        out: Dict[str, List] = {"teacher": [], "key": [], "value": []}
        groups: Dict[Tuple[int, str], List[int]] = {}  # (chunk, teacher): its rows, in input order
        for row, (chunk, teacher) in enumerate(zip(batch["chunk"], batch["teacher"])):
            groups.setdefault((int(chunk), str(teacher)), []).append(row)
        shared_key = self.reader.shared_key()
        for (_, _), rows in groups.items():
            sentences = [json.loads(batch["metadata"][row]) for row in rows]
            teacher = self.reader.teacher(sentences[0]["lang"])
            computed, shared = split_shared(teacher.annotate(sentences, self.reader.objective))
            for row, entry in zip(rows, computed):
                out["teacher"].append(str(batch["teacher"][row]))
                out["key"].append(str(batch["key"][row]))
                out["value"].append(encode_entry(entry))
            if shared:
                out["teacher"].append(str(batch["teacher"][rows[0]]))
                out["key"].append(shared_key)
                out["value"].append(encode_entry(shared))
        return out


def _missing_blocks(reader: TeacherAnnotatingReader, data_path: str, counts: Dict[str, int]) -> Iterator[List[Dict]]:
    """The rows (chunk, teacher, key, metadata) of the sentences whose targets are not cached, a block at a time of
    whole chunks; ``counts`` gets ``sentences`` and ``cached``."""
    import itertools

    stream = reader.stream(data_path)
    block: List[Dict] = []
    for chunk_number in itertools.count():
        chunk = list(itertools.islice(stream, reader.batch_size))
        if not chunk:
            break
        counts["sentences"] += len(chunk)
        for teacher, indices, keys in reader.teacher_groups(chunk):
            missing = set(teacher.cache.missing(keys))
            counts["cached"] += sum(key not in missing for key in keys)
            for i, key in zip(indices, keys):
                if key in missing:
                    metadata = chunk[i]["metadata"].metadata  # type: ignore[attr-defined]
                    try:
                        encoded = json.dumps(metadata, ensure_ascii=False)
                    except TypeError as error:
                        raise TypeError(f"{metadata.get('file')}, line {metadata.get('line')}: the sentence's metadata "
                                        f"cannot be sent to a worker ({error})") from None
                    block.append({"chunk": chunk_number, "teacher": teacher.source, "key": key, "metadata": encoded})
        if len(block) >= BLOCK_SENTENCES:
            yield block
            block = []
    if block:
        yield block


def rebalance(wave: List[List[Dict]], workers: int) -> List[List[Dict]]:
    """
    The wave's rows regrouped into blocks of whole chunks (a chunk: the sentences of one reader batch) of about equal
    size, at least four a worker where there are enough chunks, at most ``BLOCK_SENTENCES`` rows each: so that every
    actor has work until the end of the wave (a wave of 1,200 sentences is not one block of 1,024 and one of 176).
    """
    rows = [row for block in wave for row in block]
    if not rows:
        return []
    target = min(BLOCK_SENTENCES, max(1, -(-len(rows) // (4 * workers))))
    chunks: List[List[Dict]] = []
    for i, row in enumerate(rows):
        if i == 0 or row["chunk"] != rows[i - 1]["chunk"]:
            chunks.append([])
        chunks[-1].append(row)
    blocks: List[List[Dict]] = [[]]
    for chunk in chunks:  # a block is closed before the chunk that would take it over the target
        if blocks[-1] and len(blocks[-1]) + len(chunk) > target:
            blocks.append([])
        blocks[-1].extend(chunk)
    return blocks


def annotate_with_ray(reader_params: Dict, data_path: str, workers: int, address: Optional[str] = None,
                      wave_sentences: int = 100_000, progress: bool = True,
                      threads_per_worker: Optional[int] = None) -> Tuple[int, int]:
    """
    Fill the teacher caches of the ``structkd_teacher`` reader ``reader_params`` (its config, every variable
    resolved) for ``data_path`` on Ray. Returns (sentences read, sentences annotated now).

    # Parameters

    reader_params : `Dict`
        The config's ``dataset_reader``, as a plain dict.
    data_path : `str`
        What the reader reads (a path, a ``{lang: path}`` map, a ``{"labeled": ..., "unlabeled": ...}`` spec).
    workers : `int`
        Actors in the pool (on a cluster with GPUs: at most one a GPU).
    address : `str`, optional
        A running cluster's address; None: Ray on this machine, started and stopped here.
    wave_sentences : `int`
        Missing sentences annotated by one actor pool before the next wave is read.
    threads_per_worker : `int`, optional
        Torch threads in each actor; None: the cluster's CPUs shared equally by the actors.
    """
    ray = import_ray()
    from allennlp.common import Params
    from allennlp.data import DatasetReader
    from tqdm import tqdm

    if address is not None:
        check_address(address)
    reader = DatasetReader.from_params(Params(json.loads(json.dumps(reader_params))))
    assert isinstance(reader, TeacherAnnotatingReader)
    reader.cuda_device = -1  # the driver's teachers only name their caches and keys; the actors compute
    started_here = False
    counts = {"sentences": 0, "cached": 0}
    annotated = 0
    bar = tqdm(desc="annotating (ray)", unit=" sentences", disable=not progress)
    try:
        blocks = _missing_blocks(reader, data_path, counts)
        while True:
            wave: List[List[Dict]] = []
            for block in blocks:
                wave.append(block)
                if sum(len(b) for b in wave) >= wave_sentences:
                    break
            if not wave:
                break
            if not ray.is_initialized():  # only once something is missing: a complete cache needs no Ray
                started_here = True
                _start_ray(ray, address, workers)
            annotated += _run_wave(ray, wave, reader, reader_params, workers, bar, threads_per_worker)
    finally:
        bar.close()
        for teacher in reader.loaded_teachers():
            teacher.cache.close()  # folds the write-ahead log into the cache file
        if started_here:
            ray.shutdown()
    return counts["sentences"], annotated


def _start_ray(ray, address: Optional[str], workers: int) -> None:
    try:
        ray.init(address=address, num_cpus=None if address else max(os.cpu_count() or 1, workers), include_dashboard=False,
                 logging_level=logging.WARNING, configure_logging=True)
    except ConnectionError as error:
        raise RayUnavailableError(f"no Ray cluster answers at {address} ({error})") from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar, ours, over the sentences written
    context.print_on_execution_start = False


def _run_wave(ray, wave: List[List[Dict]], reader: TeacherAnnotatingReader, reader_params: Dict, workers: int, bar,
              threads_per_worker: Optional[int] = None) -> int:
    import pyarrow as pa

    resources = ray.cluster_resources()
    use_gpus = resources.get("GPU", 0) > 0 and reader_params.get("cuda_device", 0) != -1
    threads = threads_per_worker or max(1, int(resources.get("CPU", 1)) // workers)  # else the cores shared by the actors

    refs = [ray.put(pa.Table.from_pylist(block)) for block in rebalance(wave, workers)]
    dataset = ray.data.from_arrow_refs(refs).map_batches(
        _TeacherActor, fn_constructor_args=(reader_params, threads), batch_size=None,
        compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=1 if use_gpus else 0, num_cpus=1 if not use_gpus else 0)
    by_source = {teacher.source: teacher for teacher in reader.loaded_teachers()}
    shared_key = reader.shared_key()
    written = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        rows: Dict[str, List[Tuple[str, bytes]]] = {}
        for source, key, value in zip(batch["teacher"], batch["key"], batch["value"]):
            rows.setdefault(str(source), []).append((str(key), bytes(value)))
        for source, items in rows.items():
            cache = by_source[source].cache
            sentences = [item for item in items if item[0] != shared_key]
            shared = [item for item in items if item[0] == shared_key][:1]
            if shared and not cache.missing([shared_key]):
                shared = []  # kept once: the first run's copy stays
            cache.put_encoded_many(shared + sentences, required=True)  # one transaction: the batch whole, or none of it
            written += len(sentences)
            bar.update(len(sentences))
    del refs  # the wave's blocks leave the object store
    return written

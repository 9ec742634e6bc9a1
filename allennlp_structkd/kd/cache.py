"""
An on-disk cache of teacher outputs: one SQLite file per teacher archive (named by the archive's
SHA-256), rows keyed by ``objective signature | sentence id``.

SQLite makes every batch of writes one transaction, so a run killed mid-write leaves either the
whole batch or none of it, never a corrupt entry; several processes may read and write one file.
A changed teacher archive has another hash and so another file: stale outputs are never used.
"""
import hashlib
import io
import logging
import os
import sqlite3
import zipfile
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

Entry = Dict[str, np.ndarray]
logger = logging.getLogger(__name__)


class CorruptCacheError(RuntimeError):
    """The cache database cannot be read; the message names the file and how to rebuild it."""


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_directory() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "allennlp_structkd", "teacher_outputs")


def _encode(entry: Entry) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **entry)
    return buffer.getvalue()


def _decode(blob: bytes) -> Entry:
    with np.load(io.BytesIO(blob)) as data:
        return {name: data[name] for name in data.files}


def cache_file_name(teacher_hash: str) -> str:
    """The file, in a cache directory, of the teacher whose archive has this SHA-256."""
    return f"{teacher_hash[:32]}.sqlite"


def read_entries(path: str) -> Iterator[Tuple[str, Entry]]:
    """Every ``(key, entry)`` of one cache file, read-only (safe beside a run writing to it)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for key, blob in connection.execute("SELECT key, value FROM targets"):
            yield key, _decode(blob)
    finally:
        connection.close()


class TeacherCache:
    def __init__(self, directory: str, teacher_hash: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, cache_file_name(teacher_hash))
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = None
        self.hits = 0
        self.misses = 0

    def _corrupt(self, error: Exception) -> CorruptCacheError:
        return CorruptCacheError(
            f"the teacher cache {self.path} cannot be read ({error}); delete that file and run again: "
            "it holds only teacher outputs, which are recomputed"
        )

    @property
    def connection(self) -> sqlite3.Connection:
        # one connection per process (data-loader workers fork)
        if self._connection is None or self._pid != os.getpid():
            try:
                self._connection = sqlite3.connect(self.path, timeout=600)
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("CREATE TABLE IF NOT EXISTS targets (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
                self._connection.commit()
            except sqlite3.DatabaseError as error:
                self._connection = None
                raise self._corrupt(error) from error
            self._pid = os.getpid()
        return self._connection

    def get_many(self, keys: Iterable[str]) -> Dict[str, Entry]:
        keys = list(keys)
        found: Dict[str, Entry] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            try:
                rows = self.connection.execute(f"SELECT key, value FROM targets WHERE key IN ({marks})", chunk).fetchall()
            except sqlite3.DatabaseError as error:
                raise self._corrupt(error) from error
            for key, blob in rows:
                try:
                    found[key] = _decode(blob)
                except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
                    # a damaged entry is a miss: the teacher recomputes it and the entry is replaced
                    logger.warning("teacher cache %s: entry %s is damaged (%s); recomputing it", self.path, key, error)
        self.hits += len(found)
        self.misses += len(set(keys) - set(found))
        return found

    def put_many(self, items: Iterable[Tuple[str, Entry]]) -> None:
        rows = [(key, _encode(entry)) for key, entry in items]
        try:
            with self.connection:  # one transaction: all rows or none
                self.connection.executemany("INSERT OR REPLACE INTO targets (key, value) VALUES (?, ?)", rows)
        except sqlite3.DatabaseError as error:
            raise self._corrupt(error) from error

    def __len__(self) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM targets").fetchone()[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_connection"] = None
        return state

"""
An on-disk cache of teacher outputs: one SQLite file per teacher archive (named by the archive's
SHA-256), rows keyed by ``objective signature | sentence id``.

SQLite makes every batch of writes one transaction, so a run killed mid-write leaves either the
whole batch or none of it, never a corrupt entry; several processes may read and write one file.
A changed teacher archive has another hash and so another file: stale outputs are never used.
"""
import hashlib
import io
import os
import sqlite3
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

Entry = Dict[str, np.ndarray]


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


class TeacherCache:
    def __init__(self, directory: str, teacher_hash: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{teacher_hash[:32]}.sqlite")
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = None
        self.hits = 0
        self.misses = 0

    @property
    def connection(self) -> sqlite3.Connection:
        # one connection per process (data-loader workers fork)
        if self._connection is None or self._pid != os.getpid():
            self._connection = sqlite3.connect(self.path, timeout=600)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("CREATE TABLE IF NOT EXISTS targets (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            self._connection.commit()
            self._pid = os.getpid()
        return self._connection

    def get_many(self, keys: Iterable[str]) -> Dict[str, Entry]:
        keys = list(keys)
        found: Dict[str, Entry] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.connection.execute(f"SELECT key, value FROM targets WHERE key IN ({marks})", chunk):
                found[key] = _decode(blob)
        self.hits += len(found)
        self.misses += len(set(keys) - set(found))
        return found

    def put_many(self, items: Iterable[Tuple[str, Entry]]) -> None:
        rows = [(key, _encode(entry)) for key, entry in items]
        with self.connection:  # one transaction: all rows or none
            self.connection.executemany("INSERT OR REPLACE INTO targets (key, value) VALUES (?, ?)", rows)

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

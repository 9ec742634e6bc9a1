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
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

Entry = Dict[str, np.ndarray]
logger = logging.getLogger(__name__)


class CorruptCacheError(RuntimeError):
    """The cache database cannot be read; the message names the file and how to rebuild it."""


class CacheWriteError(RuntimeError):
    """The cache cannot be written (a full disk, a locked file); the message names the file and the cause."""


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is damaged (not a database, malformed), rather than that it cannot
    be written or opened now (read-only, full disk, locked, missing permissions)."""
    text = str(error).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_directory() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "allennlp_structkd", "teacher_outputs")


def encode_entry(entry: Entry) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **entry)  # type: ignore[arg-type]  # numpy types **kwds by its allow_pickle keyword
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
    """
    One teacher's cached outputs. A cache that cannot be written (a read-only file, folder or file
    system: e.g. a cache shared from a finished run) is read: outputs found there are used, outputs
    computed now are not saved (said once in the log). A full disk stops with that cause; only a file
    SQLite cannot read as a database is called corrupt.
    """

    def __init__(self, directory: str, teacher_hash: str) -> None:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError:  # a read-only place: the file may still be read
            pass
        self.path = os.path.join(directory, cache_file_name(teacher_hash))
        self._connection: Optional[sqlite3.Connection] = None
        self._pid: Optional[int] = None
        self.read_only = False
        self.hits = 0
        self.misses = 0

    def _corrupt(self, error: Exception) -> CorruptCacheError:
        return CorruptCacheError(
            f"the teacher cache {self.path} cannot be read ({error}); delete that file and run again: "
            "it holds only teacher outputs, which are recomputed"
        )

    def _writable(self) -> bool:
        folder = os.path.dirname(self.path) or "."
        if os.path.exists(self.path):
            return os.access(self.path, os.W_OK) and os.access(folder, os.W_OK)
        return os.path.isdir(folder) and os.access(folder, os.W_OK)

    def _open_read_only(self) -> sqlite3.Connection:
        if not os.path.exists(self.path):  # nothing cached, and nowhere to write: every entry is computed
            connection = sqlite3.connect(":memory:")
            connection.execute("CREATE TABLE targets (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        else:
            # immutable: a WAL database opens without writing its -shm file beside it
            connection = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True)
        if os.path.exists(self.path):  # a file that is no cache fails now, not at the first read
            connection.execute("SELECT COUNT(*) FROM targets").fetchone()
        if not self.read_only:
            logger.warning("teacher cache %s is read-only: its outputs are used, new outputs are not saved", self.path)
        self.read_only = True
        return connection

    @property
    def connection(self) -> sqlite3.Connection:
        # one connection per process (data-loader workers fork)
        if self._connection is None or self._pid != os.getpid():
            try:
                if self.read_only or not self._writable():
                    self._connection = self._open_read_only()
                else:
                    try:
                        self._connection = sqlite3.connect(self.path, timeout=600)
                        self._connection.execute("PRAGMA journal_mode=WAL")
                        self._connection.execute("CREATE TABLE IF NOT EXISTS targets (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
                        self._connection.commit()
                    except sqlite3.OperationalError as error:
                        if "readonly" not in str(error).lower() and "read-only" not in str(error).lower():
                            raise
                        self._connection = self._open_read_only()
            except sqlite3.DatabaseError as error:
                self._connection = None
                if _is_corruption(error):
                    raise self._corrupt(error) from error
                raise CacheWriteError(f"the teacher cache {self.path} cannot be opened ({error})") from error
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
                raise (self._corrupt(error) if _is_corruption(error) else
                       CacheWriteError(f"the teacher cache {self.path} cannot be read now ({error})")) from error
            for key, blob in rows:
                try:
                    found[key] = _decode(blob)
                except Exception as error:  # noqa: BLE001 (any damage: bad zip fields, truncation, wrong dtype)
                    # a damaged entry is a miss: the teacher recomputes it and the entry is replaced
                    logger.warning("teacher cache %s: entry %s is damaged (%s); recomputing it", self.path, key, error)
        self.hits += len(found)
        self.misses += len(set(keys) - set(found))
        return found

    def put_many(self, items: Iterable[Tuple[str, Entry]]) -> None:
        rows = [(key, encode_entry(entry)) for key, entry in items]
        connection = self.connection
        if self.read_only:
            return
        try:
            with connection:  # one transaction: all rows or none
                connection.executemany("INSERT OR REPLACE INTO targets (key, value) VALUES (?, ?)", rows)
        except sqlite3.DatabaseError as error:
            if _is_corruption(error):
                raise self._corrupt(error) from error
            full = "full" in str(error).lower()
            raise CacheWriteError(
                f"the teacher cache {self.path} cannot be written ({error})"
                + ("; free space on that disk, or point the cache elsewhere (STRUCTKD_CACHE, the reader's "
                   "cache_directory): the outputs cached so far are whole" if full else "")) from error

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

"""
An on-disk cache of teacher outputs: one SQLite file per teacher archive (named by the archive's
SHA-256), rows keyed by ``objective signature | sentence id``.

SQLite makes every batch of writes one transaction, so a run killed mid-write leaves either the
whole batch or none of it, never a corrupt entry; several processes may read and write one file.
A changed teacher archive has another hash and so another file: stale outputs are never used.

Writers use SQLite's write-ahead log (the ``-wal`` file beside the database) and fold it into the
database when they finish (:meth:`TeacherCache.checkpoint`), so a finished cache is the one
``.sqlite`` file. A read-only cache whose log still holds rows (a writer was killed) is read whole:
the database and its log are copied to a private temporary folder and read there.
"""
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from allennlp_structkd.keys import KEY_VERSION

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
    """The file, in a cache directory, of the teacher whose archive has this SHA-256 (and of this version of the
    sentence keys: a cache written with other keys is another file, never misread)."""
    return f"{teacher_hash[:32]}-k{KEY_VERSION}.sqlite"


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

    BUSY_TIMEOUT_MS = 600_000  # how long a writer waits for another process's transaction

    def __init__(self, directory: str, teacher_hash: str) -> None:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError:  # a read-only place: the file may still be read
            pass
        self.path = os.path.join(directory, cache_file_name(teacher_hash))
        self._connection: Optional[sqlite3.Connection] = None
        self._pid: Optional[int] = None
        self.read_only = False
        self._copy: Optional[str] = None  # the private copy a read-only cache with a write-ahead log is read from
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
        log = self.path + "-wal"
        if not os.path.exists(self.path):  # nothing cached, and nowhere to write: every entry is computed
            connection = sqlite3.connect(":memory:")
            connection.execute("CREATE TABLE targets (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        elif os.path.isfile(log) and os.path.getsize(log) > 0:
            # rows still in the write-ahead log, which an immutable open would ignore: read a private copy of both
            self._copy = tempfile.mkdtemp(prefix="structkd-cache-")
            copy = os.path.join(self._copy, os.path.basename(self.path))
            shutil.copyfile(self.path, copy)
            shutil.copyfile(log, copy + "-wal")
            connection = sqlite3.connect(copy)
            logger.info("teacher cache %s: read with its write-ahead log, from a copy in %s", self.path, self._copy)
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
                        self._connection = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_MS / 1000)
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

    def missing(self, keys: Iterable[str]) -> List[str]:
        """The keys that have no entry yet, in the order given (their entries are not read)."""
        keys = list(keys)
        present: set = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            try:
                present.update(key for (key,) in self.connection.execute(
                    f"SELECT key FROM targets WHERE key IN ({marks})", chunk))
            except sqlite3.DatabaseError as error:
                raise (self._corrupt(error) if _is_corruption(error) else
                       CacheWriteError(f"the teacher cache {self.path} cannot be read now ({error})")) from error
        return [key for key in keys if key not in present]

    def put_many(self, items: Iterable[Tuple[str, Entry]], required: bool = False) -> None:
        """Store entries; a read-only cache drops them (said once when it opened), or with ``required`` (filling
        the cache is the whole point, as in ``annotate``) raises :class:`CacheWriteError`."""
        self.put_encoded_many([(key, encode_entry(entry)) for key, entry in items], required)

    def put_encoded_many(self, rows: List[Tuple[str, bytes]], required: bool = False) -> None:
        """:meth:`put_many` of entries already encoded (:func:`encode_entry`), as annotation workers elsewhere send them."""
        connection = self.connection
        if self.read_only:
            if required:
                raise CacheWriteError(f"the teacher cache {self.path} is read-only (the file or its folder cannot be written): "
                                      "nothing annotated can be saved there; make it writable or point the cache elsewhere "
                                      "(STRUCTKD_CACHE, the reader's cache_directory)")
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

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (a writer that finishes calls it: the ``.sqlite`` file is
        then the whole cache). Another process still reading or writing may keep part of the log; its own
        checkpoint folds the rest."""
        if self._connection is None or self.read_only or self._pid != os.getpid():
            return
        try:
            # a second at most: a reader elsewhere may hold the log (it then stays, and a read-only reader reads it)
            self._connection.execute("PRAGMA busy_timeout = 1000")
            busy = self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            self._connection.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
        except sqlite3.OperationalError as error:
            busy = str(error)
        if busy:
            logger.info("teacher cache %s: write-ahead log not folded yet (another connection holds it)", self.path)

    def close(self) -> None:
        if self._connection is not None:
            self.checkpoint()
            if self._pid == os.getpid():
                self._connection.close()
            self._connection = None
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_connection"] = None
        state["_copy"] = None  # the copy belongs to the process that made it
        return state

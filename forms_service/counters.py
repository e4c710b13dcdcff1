"""Rate-limit counters that every worker on one host shares, in a small SQLite file: no server to run.

The `limits` library's `sqlite://` storage scheme, so Flask-Limiter and the daily quotas use it like Redis.
Fixed windows: one row per key with its count and the end of its window. Not precious (a lost one only
restarts a window), so commits are not fsynced. Keys arrive hashed (ratelimit.py): no address is written.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from limits.errors import ConfigurationError
from limits.storage import Storage

COUNTERS_FILE_NAME = "counters.sqlite3"
SCHEME = "sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counters_expires ON counters (expires);
"""
# One atomic statement: a window that has ended starts again from `amount`.
INCREMENT = """
INSERT INTO counters (key, count, expires) VALUES (:key, :amount, :now + :expiry)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires <= :now THEN excluded.count ELSE count + excluded.count END,
    expires = CASE WHEN expires <= :now THEN excluded.expires ELSE expires END
RETURNING count
"""
# Ended windows are deleted now and then, so the file stays as small as the live counters.
PURGE_EVERY = 256


def storage_uri(data_dir: str | os.PathLike) -> str:
    """The default FORMS_RATELIMIT_STORAGE_URI: the counters file in the data folder."""
    return f"{SCHEME}://{Path(data_dir).resolve() / COUNTERS_FILE_NAME}"


def file_of(uri: str) -> Path:
    """The counters file a sqlite:// URI names."""
    return Path(unquote(urlsplit(uri).path))


class SQLiteStorage(Storage):
    """Fixed-window counters in one SQLite file (WAL), shared by the processes of one host."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = file_of(uri)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._writes = 0
        self._create()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _create(self) -> None:
        """Folder 0700 and file 0600, as for the spool; the schema once. A file that cannot
        be used is a configuration error, which stops start-up."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = self._open()
            try:
                db.executescript(SCHEMA)
            finally:
                db.close()
        except (OSError, sqlite3.Error) as error:
            raise ConfigurationError(f"{self.path}: {type(error).__name__}") from error

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 2000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: no fsync per commit, never corrupt
        return db

    def _run(self, statement: str, parameters: dict | tuple = ()) -> tuple[list[tuple], int]:
        """Rows and changed-row count of one statement, read to its end: a RETURNING
        statement left half-read would keep its write lock."""
        with self._lock:
            if self._db is None:
                self._db = self._open()
            cursor = self._db.execute(statement, parameters)
            return cursor.fetchall(), cursor.rowcount

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add `amount` (negative: give back) and return the count of the current window."""
        now = time.time()
        [(count,)], _ = self._run(INCREMENT, {"key": key, "amount": amount, "now": now, "expiry": expiry})
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            self._run("DELETE FROM counters WHERE expires <= ?", (now,))
        return count

    def get(self, key: str) -> int:
        rows, _ = self._run("SELECT count FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
        return rows[0][0] if rows else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        rows, _ = self._run("SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, now))
        return rows[0][0] if rows else now

    def check(self) -> bool:
        try:
            self._run("SELECT 1 FROM counters LIMIT 1")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int:
        return self._run("DELETE FROM counters")[1]

    def clear(self, key: str) -> None:
        self._run("DELETE FROM counters WHERE key = ?", (key,))

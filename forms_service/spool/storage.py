"""The spool file (FORMS_DATA_DIR/spool.sqlite3: WAL, synchronous=FULL, secure_delete): its connections,
transactions, and erasing what was deleted. Each process (a gunicorn worker builds the app after the fork:
startup.py; an operator command) opens its own."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from . import schema

log = logging.getLogger(__name__)

WAL_SIZE_LIMIT = 64 * 1024 * 1024
# SQLite's page cache per connection, in KiB (its default is 2000). A connection drops its cache
# whenever another one wrote (the eraser, another worker), and the next accept fills it again while
# that upload is in memory. A blob's pages are read or written once; what is touched again (b-tree
# and schedule pages) fits in a few hundred KiB.
PAGE_CACHE_KIB = 256
# Every write waits this long for another process's write lock. In a burst of resumés each accept and
# each delivery (secure_delete zeroes the row) writes and fsyncs megabytes, one after another, and a
# submission that only has to wait its turn must not get a 503. Well below gunicorn's 30 s worker
# timeout, which the upload itself also spends.
BUSY_WAIT_MS = 15_000
# One erase attempt may hold up writers this long while readers of an older snapshot finish.
ERASE_WAIT_MS = 20
# Opening at start-up waits this long for another process's write lock (a migration, three workers
# starting on a busy machine): giving up sooner stops the worker with exit status 4, which systemd
# does not restart (a bad setting, for all it knows).
START_WAIT_MS = 60_000
INCREMENTAL = 2  # PRAGMA auto_vacuum: free pages can be given back to the file system


class SpoolUnavailable(Exception):
    """The spool cannot durably store a submission now: the view must answer 503."""


class SpoolFile:
    """The spool file of one deployment, shared by every thread and process: each process keeps one
    connection, serialised by a lock; SQLite's own locking orders writers across processes."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_WAIT_MS, start_wait_ms: int = START_WAIT_MS):
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._create(start_wait_ms)

    def _create(self, wait_ms: int) -> None:
        """Create directory (0700), file (0600) and tables, or migrate the file (schema.py); SQLite gives
        -wal/-shm the same mode. Raises SpoolUnavailable, or schema.UnknownLayout."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            with closing(self._open(wait_ms)) as db, immediate(db):
                schema.migrate(db)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolUnavailable(f"{self.path}: {type(exc).__name__}") from exc

    def _open(self, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
        """A connection with the settings every access relies on."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms or self._busy_timeout_ms)}")
        # Before WAL mode: it takes effect on a new file only, so that `erase` can give free pages back.
        db.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA secure_delete = ON")  # delivered rows are overwritten, not just unlinked
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")  # a burst of resumés must not keep the WAL huge
        db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        return db

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use."""
        if self._db is None:
            self._db = self._open()
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (`immediate`) on this process's connection, one thread at a time. The
        wait for this process's other thread (the delivery thread, itself waiting for a write lock) and then
        for another process's write lock share one busy timeout: one after the other, two full ones would
        reach gunicorn's worker timeout."""
        wait = self._busy_timeout_ms / 1000
        deadline = time.monotonic() + wait
        if not self._lock.acquire(timeout=wait):
            raise sqlite3.OperationalError("database is locked")  # what SQLite says past its own wait
        try:
            db = self._connection()
            db.execute(f"PRAGMA busy_timeout = {max(1, int((deadline - time.monotonic()) * 1000))}")
            try:
                with immediate(db):
                    yield db
            finally:
                db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        finally:
            self._lock.release()

    @contextmanager
    def _connected(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements that are atomic on their own (SELECTs)."""
        with self._lock:
            yield self._connection()

    def _sealed(self, entry_id: int) -> bytes | None:
        """A row's sealed blob, read whole in one go (a blob handle reads straight into the bytes it
        returns; a SELECT would hold SQLite's copy beside it), or None when the row is gone."""
        with self._connected() as db:
            try:
                blob = db.blobopen("outgoing", "sealed", entry_id, readonly=True)
            except sqlite3.OperationalError:
                if db.execute("SELECT 1 FROM outgoing WHERE id = ?", (entry_id,)).fetchone() is None:
                    return None
                raise
            with blob:
                return blob.read()

    def erase(self, seconds: float = 2.0) -> bool:
        """Leave nothing of deleted or rewritten rows in the files, and give freed pages back; True once done.

        Older page versions stay in the WAL until a checkpoint copies the current pages into the main file
        and cuts the WAL to zero bytes: wal_checkpoint(TRUNCATE), after incremental_vacuum (so the file
        shrinks after a burst). It needs the write lock and no reader of an older snapshot: it is tried on a
        connection of its own with a short busy timeout (a long wait would hold up every accept), again and
        again until `seconds` pass, often enough to win the lock between accepts.
        """
        deadline = time.monotonic() + seconds
        try:
            with closing(self._open(ERASE_WAIT_MS)) as db:
                while not _vacuumed(db) or db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:  # busy
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(random.uniform(0.001, 0.005))
        except sqlite3.Error as error:  # a full disk: the caller tries again later
            log.error("spool erase failed: %s", type(error).__name__)
            return False
        return True


def _vacuumed(db: sqlite3.Connection) -> bool:
    """Give every free page back to the file system; False when another connection holds the write lock.
    executescript, not execute: the pragma frees one page per step, and execute would take only the first."""
    if not db.execute("PRAGMA freelist_count").fetchone()[0]:
        return True
    try:
        db.executescript("PRAGMA incremental_vacuum")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction on `db`: the write lock is taken before reading, so that
    read-then-write is atomic across threads and processes; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise

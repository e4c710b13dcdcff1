"""Durable spool of outgoing mail: a submission is accepted only once it is on disk.

One SQLite file in FORMS_DATA_DIR (WAL, synchronous=FULL): `accept` returns
only after its commit is fsynced, the promise an MTA makes when it answers
250. Every process (gunicorn workers, the CLI) opens the same file; delivery
claims rows with a lease, so no message is sent twice in normal operation.
Rows hold sealed blobs (see sealing.py) and bookkeeping without personal data.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import InvalidToken

from .config import ConfigError
from .outgoing import OutgoingMail
from .sealing import Sealer, SealingError, key_setting, sealer_from_config

log = logging.getLogger(__name__)

SPOOL_FILE_NAME = "spool.sqlite3"
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# One erase attempt may hold up writers this long while readers of an older snapshot finish.
ERASE_WAIT_MS = 20
QUEUED = "queued"
DEAD = "dead"

# AUTOINCREMENT: ids are never reused, so a late `delivered(id)` from a worker
# whose lease ran out can never delete a newer row.
SCHEMA = """
CREATE TABLE IF NOT EXISTS outgoing (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outgoing_due ON outgoing (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
"""

# Oldest due first, at most `limit` rows, and rows only while the ones before them
# hold less than `max_bytes`: twenty 5 MB resumés must not sit opened in one worker.
CLAIM = """
UPDATE outgoing SET lease_owner = ?, lease_until = ?
WHERE id IN (
    SELECT id FROM (
        SELECT id, sum(length(sealed)) OVER (ORDER BY next_attempt_at, id) - length(sealed) AS bytes_before
        FROM outgoing
        WHERE state = 'queued' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
        ORDER BY next_attempt_at, id LIMIT ?
    )
    WHERE bytes_before < ?
)
RETURNING id, submission_id, sealed, attempts, created_at
"""
CLAIM_BYTES = 8 * 1024 * 1024


class SpoolUnavailable(Exception):
    """The spool cannot durably store a submission now: the view must answer 503."""


@dataclass(frozen=True)
class RetryPolicy:
    """When a message that could not be delivered is tried again, and when to give up.

    Delays grow exponentially from `base_seconds` up to `max_seconds`, with
    jitter so that many messages queued during an outage do not all hit the
    SMTP server at the same second when it comes back.
    """

    base_seconds: float = 60.0
    max_seconds: float = 3600.0
    max_age_seconds: float = 5 * 24 * 3600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure, always within [base, max]."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(attempts, 62))
        return random.uniform(max(self.base_seconds, ceiling / 2), ceiling)


@dataclass(frozen=True)
class Claimed:
    """A leased message, opened and ready to hand to the relay."""

    id: int
    submission_id: str
    attempts: int
    created_at: float
    mail: OutgoingMail


@dataclass(frozen=True)
class DeadEntry:
    """What an operator sees of a dead message: bookkeeping only, nothing personal."""

    id: int
    submission_id: str
    created_at: float
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class SpoolStats:
    """Health figures without personal data (for healthz and `spool status`)."""

    queued: int
    dead: int
    oldest_age_seconds: float | None

    def as_dict(self) -> dict:
        return {"depth": self.queued, "dead": self.dead, "oldest_age_seconds": self.oldest_age_seconds}


class Spool:
    """The spool file of one deployment, shared by every thread and process.

    Each process keeps one connection, serialised by a lock; SQLite's own
    locking (IMMEDIATE transactions, busy timeout) orders writers across
    processes.
    """

    def __init__(self, path: Path, sealer: Sealer, policy: RetryPolicy | None = None, *, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self.sealer = sealer
        self.policy = policy or RetryPolicy()
        self.accepted = threading.Event()  # poked on accept so delivery starts at once
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._create()
        after_fork_in_child(self._forked)

    # -- connection handling -------------------------------------------------

    def _create(self) -> None:
        """Create directory (0700), file (0600) and schema; SQLite gives -wal/-shm the same mode."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = self._open()
            try:
                db.executescript(SCHEMA)
            finally:
                db.close()  # a pre-forking master must not hand a connection to its workers
        except (OSError, sqlite3.Error) as exc:
            raise SpoolUnavailable(f"{self.path}: {type(exc).__name__}") from exc

    def _open(self, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
        """A connection with the durability settings every access relies on."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms or self._busy_timeout_ms)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA secure_delete = ON")  # delivered rows are overwritten, not just unlinked
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")  # a burst of resumés must not keep the WAL huge
        return db

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use."""
        if self._db is None:
            self._db = self._open()
        return self._db

    def _forked(self) -> None:
        """In a forked child (gunicorn --preload): fresh lock and event, since a
        parent thread may have held them, and a connection of its own. The
        parent's connection is kept, never used nor closed: SQLite forbids
        both across fork()."""
        self._lock = threading.Lock()
        self.accepted = threading.Event()
        if self._db is not None:
            self._inherited.append(self._db)
            self._db = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the write lock is taken before reading, so
        read-then-update is atomic across threads and processes."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextmanager
    def _connected(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements that are atomic on their own (SELECTs)."""
        with self._lock:
            yield self._connection()

    # -- accepting -----------------------------------------------------------

    def accept(self, submission_id: str, mails: Sequence[OutgoingMail]) -> None:
        """Store all emails of one submission in one transaction, sealed.

        Returns only after the commit reached the disk (synchronous=FULL), so
        the caller may then answer success. Raises SpoolUnavailable otherwise.
        """
        now = time.time()
        try:
            rows = [(submission_id, self.sealer.seal(mail.dumps()), now, now, now) for mail in mails]
            with self._write() as db:
                db.executemany(
                    "INSERT INTO outgoing (submission_id, sealed, created_at, queued_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except (sqlite3.Error, OSError, SealingError) as exc:  # full disk, lost key file...
            log.error("spool write failed for submission %s: %s", submission_id, type(exc).__name__)
            raise SpoolUnavailable(type(exc).__name__) from exc
        self.accepted.set()

    def check_writable(self) -> None:
        """Prove a durable write works now (for healthz); raises SpoolUnavailable."""
        try:
            with self._write() as db:
                db.execute("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?)", (time.time(),))
        except sqlite3.Error as exc:
            raise SpoolUnavailable(type(exc).__name__) from exc

    # -- delivering ----------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float, limit: int, max_bytes: int = CLAIM_BYTES) -> list[Claimed]:
        """Lease up to `limit` due messages to `owner` and return them opened, oldest first;
        no row is added once those taken hold `max_bytes`, so memory stays bounded.

        A row stays leased until `lease_seconds` have passed, after which a
        crashed owner's messages become due for someone else. Rows that no
        known key opens are marked dead rather than retried forever.
        """
        now = time.time()
        with self._write() as db:
            rows = db.execute(CLAIM, (owner, now + lease_seconds, now, now, limit, max_bytes)).fetchall()
        claimed = []
        for entry_id, submission_id, sealed, attempts, created_at in sorted(rows):
            try:
                mail = OutgoingMail.loads(self.sealer.unseal(sealed))
            except InvalidToken:
                self.dead(entry_id, "InvalidToken")
                continue
            claimed.append(Claimed(entry_id, submission_id, attempts, created_at, mail))
        return claimed

    def delivered(self, entry_id: int) -> None:
        """Forget a delivered message; secure_delete zeroes its bytes in the new page
        versions, and `erase` then removes the older ones from the files."""
        with self._write() as db:
            db.execute("DELETE FROM outgoing WHERE id = ?", (entry_id,))

    def erase(self, seconds: float = 2.0) -> bool:
        """Leave nothing of deleted or rewritten rows in the files; True once done.

        Every change writes new page versions to the WAL, and the older ones
        (the sealed row, as accepted and as leased) stay in it until a
        checkpoint copies the current pages into the main file and the WAL is
        cut to zero bytes: PRAGMA wal_checkpoint(TRUNCATE). That needs the
        write lock and no reader of an older snapshot, so it is tried on a
        connection of its own with a short busy timeout (a long wait would
        hold up every accept) again and again until `seconds` pass, polling
        often enough to win the write lock between steady accepts.
        """
        deadline = time.monotonic() + seconds
        try:
            with closing(self._open(ERASE_WAIT_MS)) as db:
                while db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:  # busy
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(random.uniform(0.001, 0.005))
        except sqlite3.Error as error:  # a full disk: the caller tries again later
            log.error("spool erase failed: %s", type(error).__name__)
            return False
        return True

    def split(self, entry_id: int, parts: Sequence[OutgoingMail]) -> list[int]:
        """Replace a row by one row per part (the same email to fewer recipients).

        The new rows keep the submission id, ages and attempt count, so the
        retry budget and dead-letter handling go on as before; they keep the
        row's lease, so no other worker sends them before the caller schedules
        them or marks them dead. Returns their ids, or [] when the row is gone
        (delivered by an overlapping lease).
        """
        sealed = [self.sealer.seal(mail.dumps()) for mail in parts]
        with self._write() as db:
            rows = db.execute(
                "DELETE FROM outgoing WHERE id = ?"
                " RETURNING submission_id, attempts, created_at, queued_at, lease_owner, lease_until",
                (entry_id,),
            ).fetchall()
            if not rows:
                return []
            (submission_id, attempts, created_at, queued_at, owner, until), ids = rows[0], []
            for blob in sealed:
                cursor = db.execute(
                    "INSERT INTO outgoing (submission_id, sealed, attempts, created_at, queued_at, next_attempt_at,"
                    " lease_owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (submission_id, blob, attempts, created_at, queued_at, queued_at, owner, until),
                )
                ids.append(cursor.lastrowid)
            return ids

    def retry_later(self, entry_id: int, error: str) -> None:
        """Schedule another attempt after a temporary failure, or give up when too old.

        `error` must be a class name or SMTP code, never server text (which
        may quote an address).
        """
        now = time.time()
        with self._write() as db:
            row = db.execute("SELECT attempts, queued_at FROM outgoing WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return  # delivered meanwhile by a worker whose lease overlapped ours
            attempts, queued_at = row[0] + 1, row[1]
            if now - queued_at < self.policy.max_age_seconds:
                db.execute(
                    "UPDATE outgoing SET attempts = ?, next_attempt_at = ?, last_error = ?,"
                    " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                    (attempts, now + self.policy.delay(attempts), error, entry_id),
                )
                return
        self.dead(entry_id, f"expired after {error}")

    def dead(self, entry_id: int, reason: str) -> None:
        """Give up on a message (permanent refusal, too old, unreadable) but keep it.

        Logged at ERROR so monitoring sees it; `spool requeue` revives it.
        """
        with self._write() as db:
            row = db.execute(
                "UPDATE outgoing SET state = 'dead', attempts = attempts + 1, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ? RETURNING submission_id, attempts",
                (reason, entry_id),
            ).fetchone()
        if row:
            log.error(
                "DEAD spool entry %d (submission %s) after %d attempts: %s; kept for `flask spool requeue`",
                entry_id, row[0], row[1], reason,
            )

    # -- operating -----------------------------------------------------------

    def stats(self) -> SpoolStats:
        """Queue depth, dead count and the age of the oldest waiting message."""
        with self._connected() as db:
            counts = dict(db.execute("SELECT state, count(*) FROM outgoing GROUP BY state").fetchall())
            (oldest,) = db.execute("SELECT min(created_at) FROM outgoing WHERE state = 'queued'").fetchone()
        age = None if oldest is None else max(0.0, time.time() - oldest)
        return SpoolStats(counts.get(QUEUED, 0), counts.get(DEAD, 0), age)

    def list_dead(self) -> list[DeadEntry]:
        """Dead messages, oldest first."""
        with self._connected() as db:
            rows = db.execute(
                "SELECT id, submission_id, created_at, attempts, last_error FROM outgoing"
                " WHERE state = 'dead' ORDER BY created_at, id"
            ).fetchall()
        return [DeadEntry(*row) for row in rows]

    def requeue(self, ids: Iterable[int] | None = None) -> int:
        """Give dead messages (the given ids, or all) a fresh start; returns how many."""
        now = time.time()
        query = (
            "UPDATE outgoing SET state = 'queued', attempts = 0, queued_at = ?, next_attempt_at = ?"
            " WHERE state = 'dead'"
        )
        with self._write() as db:
            if ids is None:
                return db.execute(query, (now, now)).rowcount
            return sum(db.execute(query + " AND id = ?", (now, now, entry_id)).rowcount for entry_id in ids)

    def release(self, ids: Sequence[int], owner: str) -> None:
        """Hand back leased messages that `owner` will not try now, without counting an attempt."""
        with self._write() as db:
            db.executemany(
                "UPDATE outgoing SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                [(entry_id, owner) for entry_id in ids],
            )

    def seconds_until_due(self) -> float:
        """How long until a queued message (leased or not) may next be claimed."""
        with self._connected() as db:
            (due,) = db.execute(
                "SELECT min(max(next_attempt_at, coalesce(lease_until, 0))) FROM outgoing WHERE state = 'queued'"
            ).fetchone()
        return float("inf") if due is None else max(0.0, due - time.time())

    def make_due(self) -> int:
        """Make every waiting, unleased message due now (operator's "retry now")."""
        now = time.time()
        with self._write() as db:
            return db.execute(
                "UPDATE outgoing SET next_attempt_at = ? WHERE state = 'queued'"
                " AND (lease_until IS NULL OR lease_until <= ?)",
                (now, now),
            ).rowcount

    def unopened(self) -> tuple[int, int]:
        """(rows no configured key opens, all rows), reading one row at a time on a
        connection of its own (a pre-forking master must not keep one)."""
        unopened = total = 0
        with closing(self._open()) as db:
            for (sealed,) in db.execute("SELECT sealed FROM outgoing"):
                total += 1
                try:
                    self.sealer.unseal(sealed)
                except InvalidToken:
                    unopened += 1
        return unopened, total

    def reseal(self) -> int:
        """Re-encrypt every row with the current key, one row per transaction so
        that neither memory nor the wait of concurrent accepts grows with the
        spool; returns how many rows were re-sealed."""
        with self._connected() as db:
            ids = [entry_id for (entry_id,) in db.execute("SELECT id FROM outgoing ORDER BY id")]
        done = 0
        for entry_id in ids:
            with self._write() as db:
                row = db.execute("SELECT sealed FROM outgoing WHERE id = ?", (entry_id,)).fetchone()
                if row:
                    db.execute("UPDATE outgoing SET sealed = ? WHERE id = ?", (self.sealer.reseal(row[0]), entry_id))
                    done += 1
        self.erase()  # the blobs sealed with the old key go from the WAL too
        return done


def after_fork_in_child(method: Callable[[], None]) -> None:
    """Call a bound method in every forked child, without keeping its object alive."""
    reference = weakref.WeakMethod(method)

    def call() -> None:
        bound = reference()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=call)


def seconds_setting(config: Mapping, name: str, default: float) -> float:
    """A positive number of seconds from the settings, or a start-up error naming it."""
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(name, "must be a number of seconds greater than 0")
    return float(value)


def retry_policy_from_config(config: Mapping) -> RetryPolicy:
    """FORMS_RETRY_BASE_SECONDS, FORMS_RETRY_MAX_SECONDS and FORMS_MAX_AGE_SECONDS, checked."""
    policy = RetryPolicy(
        seconds_setting(config, "RETRY_BASE_SECONDS", RetryPolicy.base_seconds),
        seconds_setting(config, "RETRY_MAX_SECONDS", RetryPolicy.max_seconds),
        seconds_setting(config, "MAX_AGE_SECONDS", RetryPolicy.max_age_seconds),
    )
    if policy.base_seconds > policy.max_seconds:
        raise ConfigError("RETRY_BASE_SECONDS", "must not exceed FORMS_RETRY_MAX_SECONDS")
    return policy


def spool_from_config(config: Mapping) -> Spool:
    """The deployment's spool (FORMS_DATA_DIR/spool.sqlite3); a bad setting stops start-up.

    So does a spool holding messages that none of the configured keys opens (a
    lost or mistyped key, an old key dropped before re-sealing): running on would
    mark them all dead, and a new key would only add to what nobody can read.
    """
    sealer, policy = sealer_from_config(config), retry_policy_from_config(config)
    try:
        spool = Spool(Path(config["DATA_DIR"]) / SPOOL_FILE_NAME, sealer, policy)
        unopened, total = spool.unopened()
    except (SpoolUnavailable, sqlite3.Error) as error:
        raise ConfigError("DATA_DIR", f"cannot hold the spool: {error}") from error
    if unopened:
        problem = f"does not open {unopened} of the {total} messages in {spool.path}"
        raise ConfigError(key_setting(config), f"{problem}: give the key that sealed them as well (deploy/README.md)")
    return spool

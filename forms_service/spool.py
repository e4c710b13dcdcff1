"""Durable spool of outgoing mail: a submission is accepted only once it is on disk.

One SQLite file in FORMS_DATA_DIR (WAL, synchronous=FULL): `accept` returns
only after its commit is fsynced, the promise an MTA makes when it answers
250. Every process (gunicorn workers, the CLI) opens the same file; delivery
claims rows with a lease, so no message is sent twice in normal operation.
Rows hold sealed blobs (see sealing.py) and bookkeeping without personal data.

Layout (PRAGMA user_version = LAYOUT): a row of `outgoing` is written once,
blob last, and deleted once delivered; what changes while it waits (state,
attempts, next attempt, lease, last error) lives in `schedule`, one small row per
message, as Postfix keeps a queue file apart from its state. SQLite rewrites a
whole record on any UPDATE, so a lease written beside a 9 MB blob would copy
it into memory and the WAL at every claim and retry. Releases up to 8b3365e
(layout 0) read and write those columns in `outgoing` only; triggers stored in
the file keep `schedule` up to date with whatever such a release inserts,
updates or deletes, and `outgoing`'s own columns keep the values a row was
inserted with, so both releases can run on one file during a blue/green
switch or after a rollback. What the older one cannot see: this release's
leases (it may send a message twice while both run, never lose one), and its
retries and dead letters (it tries them again).
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
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.fernet import InvalidToken

from . import config as settings
from .config import ConfigError
from .outgoing import ACKNOWLEDGEMENT, ASSOCIATION, ENVELOPE_END, OutgoingMail
from .sealing import Opening, Sealer, SealingError, key_setting, sealed_size, sealer_from_config

log = logging.getLogger(__name__)

SPOOL_FILE_NAME = "spool.sqlite3"
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# SQLite's page cache per connection, in KiB (its default is 2000). A connection drops its cache
# whenever another one wrote (the eraser, another worker), and the next accept fills it again while
# that upload is in memory: 2 MB more per upload. A blob's pages are read or written once; what is
# touched again (b-tree and schedule pages) fits in a few hundred KiB.
PAGE_CACHE_KIB = 256
# Every write waits this long for another process's write lock. In a burst of resumés each accept and
# each delivery (secure_delete zeroes the row) writes and fsyncs megabytes, one after another: with 5 s,
# a busy disk turned submissions that only had to wait their turn into 503s. Well below gunicorn's 30 s
# worker timeout, which the upload itself also spends.
BUSY_WAIT_MS = 15_000
# One erase attempt may hold up writers this long while readers of an older snapshot finish.
ERASE_WAIT_MS = 20
# Opening at start-up waits this long for another process's write lock (an older spool file's one-time
# VACUUM, three workers starting on a busy machine): giving up sooner stops the worker with exit status 4,
# which systemd does not restart (a bad setting, for all it knows).
START_WAIT_MS = 60_000
QUEUED = "queued"
DEAD = "dead"
LAYOUT = 1  # PRAGMA user_version: 0 up to release 8b3365e, all in `outgoing`; 1 with `schedule`

# Bookkeeping, not personal data: which email of a submission a row holds (outgoing.py).
# NULL in rows spooled before the column existed: treated as the association's copy.
KIND_COLUMN = f"kind TEXT CHECK (kind IN ('{ASSOCIATION}', '{ACKNOWLEDGEMENT}'))"
NOT_ACKNOWLEDGEMENT = f"kind IS NOT '{ACKNOWLEDGEMENT}'"

# AUTOINCREMENT: ids are never reused, so a late `delivered(id)` from a worker
# whose lease ran out can never delete a newer row. `sealed` comes last: SQLite
# writes a trailing zeroblob without making it in memory (Spool._store), while
# one followed by other columns is made whole, and then copied into the record.
TABLE = f"""(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    {KIND_COLUMN},
    sealed BLOB NOT NULL
)"""
INDEX = "CREATE INDEX IF NOT EXISTS outgoing_due ON outgoing (state, next_attempt_at)"
# What the last clean check of the sealed rows (Spool.unopened) found: every row up to `through_id`
# opens with the keys named (Sealer.fingerprints). One row.
OPENED_CHECK = (
    "CREATE TABLE IF NOT EXISTS opened_check (only INTEGER PRIMARY KEY CHECK (only = 1),"
    " keys TEXT NOT NULL, through_id INTEGER NOT NULL)"
)
SCHEMA = f"CREATE TABLE IF NOT EXISTS outgoing {TABLE};\n{INDEX};\n{OPENED_CHECK};"
COLUMNS = (
    "id, submission_id, state, attempts, created_at, queued_at, next_attempt_at, lease_owner, lease_until,"
    " last_error, kind, sealed"
)

# What changes while a message waits, kept out of `outgoing`'s rows (see the module's docstring). The
# same columns in `outgoing` keep what the row was inserted with, or what a release of layout 0 wrote.
BOOKKEEPING = ("state", "attempts", "queued_at", "next_attempt_at", "lease_owner", "lease_until", "last_error")
SCHEDULE = """CREATE TABLE IF NOT EXISTS schedule (
    id INTEGER PRIMARY KEY,  -- outgoing.id
    state TEXT NOT NULL CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT
)"""
SCHEDULE_INDEX = "CREATE INDEX IF NOT EXISTS schedule_due ON schedule (state, next_attempt_at)"
# Triggers, so that the inserts, updates and deletes of every release, this one's and older ones', keep
# `schedule` whole. They name the id and small columns only: SQLite then never loads a blob for them.
# One trigger per column, fired only when a statement sets that column: a release of layout 0 that
# leases a row must not put back the attempts or retry time its stale copy in `outgoing` holds.
MIRRORS = (
    (
        "CREATE TRIGGER IF NOT EXISTS schedule_insert AFTER INSERT ON outgoing BEGIN"
        f" INSERT OR REPLACE INTO schedule (id, {', '.join(BOOKKEEPING)})"
        f" VALUES (NEW.id, {', '.join(f'NEW.{column}' for column in BOOKKEEPING)}); END"
    ),
    "CREATE TRIGGER IF NOT EXISTS schedule_delete AFTER DELETE ON outgoing BEGIN DELETE FROM schedule WHERE id = OLD.id; END",
    *(
        f"CREATE TRIGGER IF NOT EXISTS schedule_{column} AFTER UPDATE OF {column} ON outgoing BEGIN"
        f" UPDATE schedule SET {column} = NEW.{column} WHERE id = NEW.id; END"
        for column in BOOKKEEPING
    ),
)
# A message with its bookkeeping: s.* from `schedule`, o.* (ids, ages, kind, blob) from `outgoing`.
MESSAGES = "schedule AS s JOIN outgoing AS o ON o.id = s.id"

# The sealed blob is written into the row's zeroblob afterwards (Spool._store), a piece at a time.
INSERT = (
    "INSERT INTO outgoing (submission_id, sealed, created_at, queued_at, next_attempt_at, kind)"
    " VALUES (?, zeroblob(?), ?, ?, ?, ?)"
)
PROBE_SUBMISSION = "health-probe"

# Oldest due first, at most `limit` rows, and rows only while the ones before them
# hold less than `max_bytes`: a lease is a promise to send within half of it, and one worker's SMTP
# session sends twenty 5 MB resumés one after another, so a batch is kept to what it can send in time.
# The lengths are taken in a query of their own: a window over `length(sealed)` itself
# copies every blob into the window's temporary table (60 MB for a few resumés); length()
# alone reads the record's header, not the blob. The lease is then written in `schedule` (LEASE).
DUE = f"""
SELECT id, submission_id, attempts, created_at, kind FROM (
    SELECT *, sum(bytes) OVER (ORDER BY next_attempt_at, id) - bytes AS bytes_before
    FROM (
        SELECT s.id, o.submission_id, s.attempts, o.created_at, o.kind, s.next_attempt_at, length(o.sealed) AS bytes
        FROM {MESSAGES}
        WHERE s.state = 'queued' AND s.next_attempt_at <= ? AND (s.lease_until IS NULL OR s.lease_until <= ?)
        ORDER BY s.next_attempt_at, s.id LIMIT ?
    )
)
WHERE bytes_before < ?
"""
LEASE = "UPDATE schedule SET lease_owner = ?, lease_until = ? WHERE id = ?"
CLAIM_BYTES = 8 * 1024 * 1024

# What the spool's rows take on disk now: pages in use, free pages (given back by `erase`) left out.
# One read of the file header: cheap enough for every accept, and the same figure for every process.
USED_BYTES = (
    "SELECT (page_count - freelist_count) * page_size, page_size"
    " FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
)
OVERFLOW_POINTER = 4  # bytes of each overflow page that hold the next page's number, not the row
INCREMENTAL = 2  # PRAGMA auto_vacuum: free pages can be given back to the file system


class SpoolUnavailable(Exception):
    """The spool cannot durably store a submission now: the view must answer 503."""


class RowGone(Exception):
    """A row was deleted while it was read: delivered (or split) by a worker whose lease overlapped ours."""


class SpoolFull(SpoolUnavailable):
    """The spool holds all it may (FORMS_SPOOL_MAX_BYTES, less the reserve for this form): 503, try later."""


@dataclass(frozen=True)
class SpoolBounds:
    """How much the spool may hold on disk, and how much of it only the forms that use the reserve may fill.

    1 GB holds over a hundred of the largest applications (a 5 MB resumé is
    about 9 MB sealed) waiting through a mail outage, and leaves a small
    server's disk room for the system, the WAL and the logs. 64 MB of
    reserve is thousands of support requests (a few KB each), so a flood of
    uploads never fills the room a request for help needs.
    """

    max_bytes: int = settings.DEFAULTS["SPOOL_MAX_BYTES"]
    reserve_bytes: int = settings.DEFAULTS["SPOOL_RESERVE_BYTES"]

    def limit(self, reserve: bool) -> int:
        """What the spool may hold after a submission: all of it with the reserve, else all but the reserve."""
        return self.max_bytes if reserve else self.max_bytes - self.reserve_bytes


@dataclass(frozen=True)
class RetryPolicy:
    """When a message that could not be delivered is tried again, and when to give up.

    Delays grow exponentially from `base_seconds` up to `max_seconds`, with
    jitter so that many messages queued during an outage do not all hit the
    SMTP server at the same second when it comes back.
    """

    base_seconds: float = settings.DEFAULTS["RETRY_BASE_SECONDS"]
    max_seconds: float = settings.DEFAULTS["RETRY_MAX_SECONDS"]
    max_age_seconds: float = settings.DEFAULTS["MAX_AGE_SECONDS"]

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure, always within [base, max]."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(attempts, 62))
        return random.uniform(max(self.base_seconds, ceiling / 2), ceiling)


@dataclass(frozen=True)
class Claimed:
    """A leased message, its envelope opened, ready to hand to the relay: its `mail.data` is the row's
    Opening, which reads and decrypts the row a piece at a time as DATA sends it (RowGone, TokenChanged)."""

    id: int
    submission_id: str
    attempts: int
    created_at: float
    mail: OutgoingMail

    @property
    def kind(self) -> str:
        return self.mail.kind


@dataclass(frozen=True)
class DeadEntry:
    """What an operator sees of a dead message: bookkeeping only, nothing personal."""

    id: int
    submission_id: str
    created_at: float
    attempts: int
    last_error: str | None
    kind: str | None  # None: spooled before kinds were recorded (handled as the association's copy)


@dataclass(frozen=True)
class SpoolStats:
    """Health figures without personal data (for healthz and `spool status`)."""

    queued: int
    dead: int
    oldest_age_seconds: float | None
    used_bytes: int = 0  # what the rows take on disk, the figure the bounds apply to (health.py warns)

    def as_dict(self) -> dict:
        return {"depth": self.queued, "dead": self.dead, "oldest_age_seconds": self.oldest_age_seconds}


class Spool:
    """The spool file of one deployment, shared by every thread and process.

    Each process keeps one connection, serialised by a lock; SQLite's own
    locking (IMMEDIATE transactions, busy timeout) orders writers across
    processes.
    """

    def __init__(
        self,
        path: Path,
        sealer: Sealer,
        policy: RetryPolicy | None = None,
        *,
        busy_timeout_ms: int = BUSY_WAIT_MS,
        start_wait_ms: int = START_WAIT_MS,
        clock: Callable[[], float] = time.time,
        bounds: SpoolBounds | None = None,
    ):
        self.clock = clock  # wall time of every schedule and age: tests give one they move themselves
        self.path = Path(path)
        self.sealer = sealer
        self.policy = policy or RetryPolicy()
        self.bounds = bounds or SpoolBounds()
        self.accepted = threading.Event()  # poked on accept so delivery starts at once
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._create(start_wait_ms)
        after_fork_in_child(self._forked)

    # -- connection handling -------------------------------------------------

    def _create(self, wait_ms: int) -> None:
        """Create directory (0700), file (0600) and schema; SQLite gives -wal/-shm the same mode."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = self._open(wait_ms)
            try:
                _give_back_space(db)
                db.executescript(SCHEMA)
                _add_kind_column(db)
                _put_sealed_last(db)
                _keep_bookkeeping_apart(db)
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
        db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
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
        """One IMMEDIATE transaction (`_immediate`) on this process's connection, one thread at a time."""
        with self._lock, _immediate(self._connection()) as db:
            yield db

    @contextmanager
    def _connected(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements that are atomic on their own (SELECTs)."""
        with self._lock:
            yield self._connection()

    # -- accepting -----------------------------------------------------------

    def accept(self, submission_id: str, mails: Sequence[OutgoingMail], *, reserve: bool = False) -> None:
        """Store all emails of one submission in one transaction, sealed.

        Returns only after the commit reached the disk (synchronous=FULL), so
        the caller may then answer success. Raises SpoolFull when the spool
        would then hold more than its bounds allow (`reserve`: this form may
        use the reserve), SpoolUnavailable otherwise.
        """
        try:
            with self._write() as db:
                self._store(db, submission_id, mails, reserve)
        except SpoolFull:
            log.warning("spool full: submission %s refused (FORMS_SPOOL_MAX_BYTES)", submission_id)
            raise
        except (sqlite3.Error, OSError, SealingError) as exc:  # full disk, lost key file...
            log.error("spool write failed for submission %s: %s", submission_id, type(exc).__name__)
            raise SpoolUnavailable(type(exc).__name__) from exc
        self.accepted.set()

    def _store(
        self, db: sqlite3.Connection, submission_id: str, mails: Sequence[OutgoingMail], reserve: bool
    ) -> list[int]:
        """Insert `mails` sealed, within the bounds; returns the rows' ids. Shared by accept and probe,
        so the probe proves the very path a submission takes.

        Each row is inserted with a zeroblob of the token's exact size and the
        token is sealed straight into it (incremental blob I/O), so neither
        the token nor SQLite's copy of a bound value is ever held whole: a
        resumé costs its message and a few pieces, not five copies more. This
        seals inside the write transaction, a few milliseconds per megabyte.
        """
        contents = [mail.parts() for mail in mails]
        sizes = [sealed_size(sum(map(len, parts))) for parts in contents]
        self._make_room(db, sizes, reserve)
        now, ids = self.clock(), []
        for mail, parts, size in zip(mails, contents, sizes, strict=True):
            entry_id = db.execute(INSERT, (submission_id, size, now, now, now, mail.kind)).lastrowid
            with db.blobopen("outgoing", "sealed", entry_id) as blob:
                self.sealer.seal_into(parts, blob.write)
            ids.append(entry_id)
        return ids

    def _make_room(self, db: sqlite3.Connection, sizes: Sequence[int], reserve: bool) -> None:
        """Raise SpoolFull unless blobs of `sizes` fit within the bounds. Inside the write transaction, so
        that workers accepting at once are counted one after another and never pass the bound together."""
        used, page_size = db.execute(USED_BYTES).fetchone()
        if used + sum(_pages(size, page_size) for size in sizes) * page_size > self.bounds.limit(reserve):
            raise SpoolFull("full")

    def probe(self, mail: OutgoingMail) -> None:
        """Store `mail` as `accept` would and remove it in the same transaction (for the health check).

        Sealed with the live key, inserted into the same table and index, and
        committed with the same fsync, so a lost key file, a corrupt page or a
        full disk fail here as they would for a submission (the commit still
        writes the touched pages to the WAL and fsyncs them); inside one
        transaction no other connection ever sees the row, so it is never
        delivered nor counted. Raises SpoolUnavailable.
        """
        try:
            with self._write() as db:
                (entry_id,) = self._store(db, PROBE_SUBMISSION, [mail], reserve=True)  # past the bound: nobody
                db.execute("DELETE FROM outgoing WHERE id = ?", (entry_id,))
        except (sqlite3.Error, OSError, SealingError) as exc:
            raise SpoolUnavailable(type(exc).__name__) from exc

    # -- delivering ----------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float, limit: int, max_bytes: int = CLAIM_BYTES) -> list[Claimed]:
        """Lease up to `limit` due messages to `owner` and return them, oldest first, their envelopes
        opened and signatures checked (the messages are read as they are sent: see Claimed); no row is
        added once those taken hold `max_bytes`.

        A row stays leased until `lease_seconds` have passed, after which a
        crashed owner's messages become due for someone else. Rows that no
        known key opens are marked dead rather than retried forever.
        """
        now = self.clock()
        with self._write() as db:
            rows = db.execute(DUE, (now, now, limit, max_bytes)).fetchall()
            db.executemany(LEASE, [(owner, now + lease_seconds, row[0]) for row in rows])
        claimed = []
        for entry_id, submission_id, attempts, created_at, kind in sorted(rows):
            try:
                opening = self._opening(entry_id)
            except InvalidToken:
                self.dead(entry_id, "InvalidToken")
                continue
            except RowGone:
                continue
            claimed.append(
                Claimed(
                    entry_id,
                    submission_id,
                    attempts,
                    created_at,
                    OutgoingMail.enveloped(opening.head, opening, kind or ASSOCIATION),
                )
            )
        return claimed

    @contextmanager
    def _blob(self, entry_id: int) -> Iterator[sqlite3.Blob]:
        """A row's blob, open under the lock while the block runs; RowGone if the row is gone.

        The blob handle is a read transaction: kept open through an SMTP
        send, it would stop `erase`'s checkpoint (which needs no reader of an
        older snapshot) for as long as the mail server takes.
        """
        with self._connected() as db:
            try:
                blob = db.blobopen("outgoing", "sealed", entry_id, readonly=True)
            except sqlite3.OperationalError:
                if db.execute("SELECT 1 FROM outgoing WHERE id = ?", (entry_id,)).fetchone() is None:
                    raise RowGone(entry_id) from None
                raise
            with blob:
                yield blob

    def _opening(self, entry_id: int) -> Opening:
        """A row opened to be sent (Sealer.opening): its envelope line read, its message read later.

        The first pass, which checks the signature, reads the row through one
        blob handle, one snapshot: a row `rotate-key` rewrites meanwhile is
        read as it was, not half old and half new, which would look forged and
        go dead. The message is read later a blob handle per piece (_RowBlob).
        """
        with self._blob(entry_id) as blob:
            row = _RowBlob(self, entry_id, len(blob))
            with row.reading_from(blob):
                return self.sealer.opening(row, ENVELOPE_END)

    def _opened(self, entry_id: int) -> bytearray:
        """A row's blob opened whole, read a piece at a time (Sealer.unseal_from), so a resumé is held once,
        not six times; RowGone when it is gone (delivered by a worker whose lease overlapped ours)."""
        with self._blob(entry_id) as blob:
            return self.sealer.unseal_from(blob)

    def delivered(self, entry_id: int) -> None:
        """Forget a delivered message; secure_delete zeroes its bytes in the new page
        versions, and `erase` then removes the older ones from the files."""
        with self._write() as db:
            db.execute("DELETE FROM outgoing WHERE id = ?", (entry_id,))

    def erase(self, seconds: float = 2.0) -> bool:
        """Leave nothing of deleted or rewritten rows in the files, and give freed pages back; True once done.

        Free pages go first (PRAGMA incremental_vacuum), so that the spool
        file shrinks after a burst; it moves pages, writing new versions to
        the WAL, which the checkpoint then takes away too. Every change writes new page versions to the WAL, and the older ones
        (the sealed row as accepted, its bookkeeping as it changed) stay in it until a
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
                while not _vacuumed(db) or db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:  # busy
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(random.uniform(0.001, 0.005))
        except sqlite3.Error as error:  # a full disk: the caller tries again later
            log.error("spool erase failed: %s", type(error).__name__)
            return False
        return True

    def split(self, entry_id: int, groups: Sequence[tuple[str, ...]]) -> list[int]:
        """Replace a row by one row per group of its recipients (the same email to fewer recipients).

        The new rows keep the submission id, ages and attempt count, so the
        retry budget and dead-letter handling go on as before; they keep the
        row's lease, so no other worker sends them before the caller schedules
        them or marks them dead. Returns their ids, or [] when the row is gone
        (delivered by an overlapping lease).

        The recipients are inside the seal, so the email is opened whole here
        and sealed again per group: a rare path (a server refused some
        recipients), unlike sending, which never holds the email whole.
        """
        try:
            mail = OutgoingMail.loads(self._opened(entry_id))
        except RowGone:
            return []
        sealed = [self.sealer.seal(replace(mail, recipients=group).dumps()) for group in groups]
        with self._write() as db:
            row = db.execute(
                "SELECT o.submission_id, s.attempts, o.created_at, s.queued_at, s.lease_owner, s.lease_until, o.kind"
                f" FROM {MESSAGES} WHERE s.id = ?",
                (entry_id,),
            ).fetchone()
            if row is None:
                return []
            db.execute("DELETE FROM outgoing WHERE id = ?", (entry_id,))
            (submission_id, attempts, created_at, queued_at, owner, until, kind), ids = row, []
            for blob in sealed:  # the lease in `outgoing` too, where a release of layout 0 looks for it
                cursor = db.execute(
                    "INSERT INTO outgoing (submission_id, sealed, attempts, created_at, queued_at, next_attempt_at,"
                    " lease_owner, lease_until, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (submission_id, blob, attempts, created_at, queued_at, queued_at, owner, until, kind),
                )
                ids.append(cursor.lastrowid)
            return ids

    def retry_later(self, entry_id: int, error: str) -> None:
        """Schedule another attempt after a temporary failure, or give up when too old.

        `error` must be a class name or SMTP code, never server text (which
        may quote an address).
        """
        now = self.clock()
        with self._write() as db:
            row = db.execute("SELECT attempts, queued_at FROM schedule WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return  # delivered meanwhile by a worker whose lease overlapped ours
            attempts, queued_at = row[0] + 1, row[1]
            if now - queued_at < self.policy.max_age_seconds:
                db.execute(
                    "UPDATE schedule SET attempts = ?, next_attempt_at = ?, last_error = ?,"
                    " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                    (attempts, now + self.policy.delay(attempts), error, entry_id),
                )
                return
        self.dead(entry_id, f"expired after {error}")

    def dead(self, entry_id: int, reason: str) -> None:
        """Give up on a message (permanent refusal, too old, unreadable) but keep it.

        Logged at ERROR so monitoring sees it; `spool requeue` revives it,
        `spool discard` gives it up for good.
        """
        with self._write() as db:
            db.execute(
                "UPDATE schedule SET state = 'dead', attempts = attempts + 1, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (reason, entry_id),
            )
            row = db.execute(
                f"SELECT o.submission_id, s.attempts, o.kind FROM {MESSAGES} WHERE s.id = ?", (entry_id,)
            ).fetchone()
        if row:
            log.error(
                "DEAD spool entry %d (%s, submission %s) after %d attempts: %s; kept: once the cause is fixed,"
                " `flask --app forms_service spool requeue %d`, or to give it up, `flask --app forms_service"
                " spool discard %d`",
                entry_id,
                row[2] or "unknown kind",
                row[0],
                row[1],
                reason,
                entry_id,
                entry_id,
            )

    def drop(self, entry_id: int, reason: str) -> None:
        """Forget an acknowledgement that can never be delivered (a permanent refusal: a mistyped
        address); it holds nothing the association needs, and kept dead it would alarm forever."""
        with self._write() as db:
            row = db.execute("DELETE FROM outgoing WHERE id = ? RETURNING submission_id", (entry_id,)).fetchone()
        if row:
            log.warning(
                "dropped acknowledgement spool entry %d (submission %s): %s; the association's copy is not affected",
                entry_id,
                row[0],
                reason,
            )

    # -- operating -----------------------------------------------------------

    def stats(self) -> SpoolStats:
        """Queue depth, dead count and the age of the oldest waiting message."""
        with self._connected() as db:
            counts = dict(db.execute("SELECT state, count(*) FROM schedule GROUP BY state").fetchall())
            (oldest,) = db.execute(f"SELECT min(o.created_at) FROM {MESSAGES} WHERE s.state = 'queued'").fetchone()
            used = db.execute(USED_BYTES).fetchone()[0]
        age = None if oldest is None else max(0.0, self.clock() - oldest)
        return SpoolStats(counts.get(QUEUED, 0), counts.get(DEAD, 0), age, used)

    def list_dead(self) -> list[DeadEntry]:
        """Dead messages, oldest first."""
        with self._connected() as db:
            rows = db.execute(
                f"SELECT s.id, o.submission_id, o.created_at, s.attempts, s.last_error, o.kind FROM {MESSAGES}"
                " WHERE s.state = 'dead' ORDER BY o.created_at, s.id"
            ).fetchall()
        return [DeadEntry(*row) for row in rows]

    def dead_copies(self) -> int:
        """Dead rows holding the association's copy (or of unknown kind): mail nobody has read yet."""
        with self._connected() as db:
            (count,) = db.execute(
                f"SELECT count(*) FROM {MESSAGES} WHERE s.state = 'dead' AND {NOT_ACKNOWLEDGEMENT}"
            ).fetchone()
        return count

    def discard(self, entry_id: int) -> bool:
        """Delete one dead message for good (the operator decided); False if no dead row has that id."""
        with self._write() as db:
            row = db.execute(
                "DELETE FROM outgoing WHERE id = ? AND id IN (SELECT id FROM schedule WHERE state = 'dead')"
                " RETURNING submission_id, kind",
                (entry_id,),
            ).fetchone()
        if row:
            log.warning(
                "discarded dead spool entry %d (%s, submission %s) at the operator's request",
                entry_id,
                row[1] or "unknown kind",
                row[0],
            )
        return row is not None

    def requeue(self, ids: Iterable[int] | None = None) -> int:
        """Give dead messages (the given ids, or all) a fresh start; returns how many."""
        now = self.clock()
        query = (
            "UPDATE schedule SET state = 'queued', attempts = 0, queued_at = ?, next_attempt_at = ?"
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
                "UPDATE schedule SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                [(entry_id, owner) for entry_id in ids],
            )

    def seconds_until_due(self) -> float:
        """How long until a queued message (leased or not) may next be claimed."""
        with self._connected() as db:
            (due,) = db.execute(
                "SELECT min(max(next_attempt_at, coalesce(lease_until, 0))) FROM schedule WHERE state = 'queued'"
            ).fetchone()
        return float("inf") if due is None else max(0.0, due - self.clock())

    def make_due(self) -> int:
        """Make every waiting, unleased message due now (operator's "retry now")."""
        now = self.clock()
        with self._write() as db:
            return db.execute(
                "UPDATE schedule SET next_attempt_at = ? WHERE state = 'queued'"
                " AND (lease_until IS NULL OR lease_until <= ?)",
                (now, now),
            ).rowcount

    def unopened(self, *, since_last_check: bool = False) -> tuple[int, int]:
        """(rows no configured key opens, all rows), on a connection of its own (a
        pre-forking master must not keep one).

        Each row is read a piece at a time and only its signature is checked
        (Sealer.opens): nothing is decrypted. A clean check is recorded: the
        last row id it saw, and the keys it used. `since_last_check` (the
        monitoring check, every few minutes) then checks only the rows after
        that id, as long as every recorded key is still configured: a row
        never changes once written but by `rotate-key`, and a row that opened
        with some keys opens with any set that holds them. Dropping a key
        makes the next check read everything again, once. So with a backlog
        of large CVs each check reads what came since the last one, and still
        finds every row a configured key no longer opens. Start-up checks all.
        """
        keys = self.sealer.fingerprints()
        with closing(self._open()) as db:
            after = self._checked_through(db, keys) if since_last_check else 0
            (total,) = db.execute("SELECT count(*) FROM outgoing").fetchone()
            ids = [entry_id for (entry_id,) in db.execute("SELECT id FROM outgoing WHERE id > ?", (after,))]
            unopened = sum(not self._opens(db, entry_id) for entry_id in ids)
            if not unopened:
                db.execute(
                    "INSERT OR REPLACE INTO opened_check VALUES (1, ?, ?)", (" ".join(sorted(keys)), max([after, *ids]))
                )
        return unopened, total

    @staticmethod
    def _checked_through(db: sqlite3.Connection, keys: frozenset[str]) -> int:
        """The last row id a clean check found opened with keys all still in `keys`, else 0."""
        row = db.execute("SELECT keys, through_id FROM opened_check").fetchone()
        return row[1] if row and set(row[0].split()) <= keys else 0

    def _opens(self, db: sqlite3.Connection, entry_id: int) -> bool:
        """Whether a configured key opens the row; True when it is gone (delivered meanwhile)."""
        try:
            with db.blobopen("outgoing", "sealed", entry_id, readonly=True) as blob:
                return self.sealer.opens(blob)
        except sqlite3.OperationalError:  # no such row
            return True

    def reseal(self) -> tuple[int, list[int]]:
        """Re-encrypt every row with the current key, one row per transaction so
        that neither memory nor the wait of concurrent accepts grows with the
        spool; returns how many rows were re-sealed, and the ids of rows no
        known key opens, which are skipped (and marked dead, as delivery would)."""
        with self._connected() as db:
            ids = [entry_id for (entry_id,) in db.execute("SELECT id FROM outgoing ORDER BY id")]
        done, unreadable = 0, []
        for entry_id in ids:
            with self._write() as db:
                row = db.execute("SELECT sealed FROM outgoing WHERE id = ?", (entry_id,)).fetchone()
                resealed = row and self._resealed(row[0])
                if resealed:
                    db.execute("UPDATE outgoing SET sealed = ? WHERE id = ?", (resealed, entry_id))
                    done += 1
            if row and not resealed:
                unreadable.append(entry_id)
                self.dead(entry_id, "InvalidToken")
        self.erase()  # the blobs sealed with the old key go from the WAL too
        return done, unreadable

    def _resealed(self, sealed: bytes) -> bytes | None:
        """The blob sealed with the current key, or None when no known key opens it."""
        try:
            return self.sealer.reseal(sealed)
        except InvalidToken:
            return None


class _RowBlob:
    """A row's sealed blob as Sealer reads a token (sealing.Readable): from the blob handle given by
    `reading_from` while it lasts, else each read from a blob handle of its own (Spool._blob), so that a
    send that takes minutes holds no read transaction meanwhile."""

    def __init__(self, spool: Spool, entry_id: int, length: int):
        self._spool, self._id, self._length, self._position, self._blob = spool, entry_id, length, 0, None

    @contextmanager
    def reading_from(self, blob: sqlite3.Blob) -> Iterator[None]:
        self._blob = blob
        try:
            yield
        finally:
            self._blob = None

    def __len__(self) -> int:
        return self._length

    def seek(self, offset: int, origin: int = os.SEEK_SET) -> None:
        self._position = offset + {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[origin]

    def read(self, length: int = -1) -> bytes:
        with nullcontext(self._blob) if self._blob is not None else self._spool._blob(self._id) as blob:
            blob.seek(self._position)
            data = blob.read(length)
        self._position += len(data)
        return data


def _pages(blob_bytes: int, page_size: int) -> int:
    """Pages a new row of `blob_bytes` takes at most: its overflow pages, rounded up, and one for its cell
    and the b-tree's growth, so that what the bounds count stays above what the file really holds."""
    return -(-blob_bytes // (page_size - OVERFLOW_POINTER)) + 1


def _give_back_space(db: sqlite3.Connection) -> None:
    """Make the file able to shrink: auto_vacuum INCREMENTAL, so that `erase` gives freed pages back.

    The mode can only change before the first table exists, or by a VACUUM,
    which rewrites the file: so a new file is made that way, and a spool
    file from before is rewritten once, when first opened. VACUUM takes the
    write lock itself (a process that checked at the same moment rewrites
    it once more, harmlessly); its copy stays in memory, not in a temporary
    file outside FORMS_DATA_DIR, and the checkpoint then takes the old pages
    out of the files.
    """
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
        return
    db.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
    db.execute("PRAGMA temp_store = MEMORY")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _vacuumed(db: sqlite3.Connection) -> bool:
    """Give every free page back to the file system; False when another connection holds the write lock.

    executescript, not execute: the pragma frees one page per step, and
    execute would take only the first.
    """
    if not db.execute("PRAGMA freelist_count").fetchone()[0]:
        return True
    try:
        db.executescript("PRAGMA incremental_vacuum")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True


def _put_sealed_last(db: sqlite3.Connection) -> None:
    """Rebuild a table made before `sealed` came last (see TABLE), keeping its rows, ids and id sequence.

    Under the write lock, checked again inside it, so that workers opening the
    same old file at once rebuild it once.
    """
    with _immediate(db):
        if [row[1] for row in db.execute("PRAGMA table_info(outgoing)")][-1] != "sealed":
            (sequence,) = db.execute(
                "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'outgoing'"
            ).fetchone()
            db.execute(f"CREATE TABLE outgoing_rebuilt {TABLE}")
            db.execute(f"INSERT INTO outgoing_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM outgoing")
            db.execute("DROP TABLE outgoing")
            db.execute("ALTER TABLE outgoing_rebuilt RENAME TO outgoing")
            db.execute(INDEX)
            db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'outgoing'", (sequence,))


def _keep_bookkeeping_apart(db: sqlite3.Connection) -> None:
    """Move a file of layout 0 to layout 1: `schedule`, its triggers, and each row's bookkeeping as it stands.

    After `_put_sealed_last`, whose rebuild would drop the triggers. Reads the
    small columns only, and only once: a layout 1 file is not scanned at each
    open (a damaged page must not stop the start, it is the health check's to
    find). Under the write lock, checked again inside it, so that workers
    opening the same old file at once move it once.
    """
    columns = ", ".join(BOOKKEEPING)
    with _immediate(db):
        if db.execute("PRAGMA user_version").fetchone()[0] >= LAYOUT:
            return
        for statement in (SCHEDULE, SCHEDULE_INDEX, *MIRRORS):
            db.execute(statement)
        db.execute(f"INSERT OR REPLACE INTO schedule (id, {columns}) SELECT id, {columns} FROM outgoing")
        db.execute(f"PRAGMA user_version = {LAYOUT}")


def _add_kind_column(db: sqlite3.Connection) -> None:
    """Give a spool file made before kinds were recorded its `kind` column (old rows: NULL).

    Under the write lock, so that workers opening the same old file at once add it once.
    """
    with _immediate(db):
        columns = {row[1] for row in db.execute("PRAGMA table_info(outgoing)")}
        if "kind" not in columns:
            db.execute(f"ALTER TABLE outgoing ADD COLUMN {KIND_COLUMN}")


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
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


def after_fork_in_child(method: Callable[[], None]) -> None:
    """Call a bound method in every forked child, without keeping its object alive."""
    reference = weakref.WeakMethod(method)

    def call() -> None:
        bound = reference()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=call)


def retry_policy_from_config(config: Mapping) -> RetryPolicy:
    """FORMS_RETRY_BASE_SECONDS, FORMS_RETRY_MAX_SECONDS and FORMS_MAX_AGE_SECONDS (checked by config.py)."""
    return RetryPolicy(
        *(
            float(settings.value(config, name))
            for name in ("RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS", "MAX_AGE_SECONDS")
        )
    )


def bounds_from_config(config: Mapping) -> SpoolBounds:
    """FORMS_SPOOL_MAX_BYTES and FORMS_SPOOL_RESERVE_BYTES (checked by config.py: the reserve is part of the bound)."""
    return SpoolBounds(*(settings.value(config, name) for name in ("SPOOL_MAX_BYTES", "SPOOL_RESERVE_BYTES")))


def spool_from_config(config: Mapping) -> Spool:
    """The deployment's spool (FORMS_DATA_DIR/spool.sqlite3); a bad setting stops start-up."""
    sealer, policy, bounds = sealer_from_config(config), retry_policy_from_config(config), bounds_from_config(config)
    try:
        return Spool(Path(config["DATA_DIR"]) / SPOOL_FILE_NAME, sealer, policy, bounds=bounds)
    except SpoolUnavailable as error:
        raise ConfigError("DATA_DIR", f"cannot hold the spool: {error}") from error


def unopened_problem(spool: Spool, config: Mapping, *, since_last_check: bool = False) -> ConfigError | None:
    """The start-up error for a spool holding messages none of the configured keys opens, if any.

    Serving on would mark them all dead, and a new key would only add to what
    nobody can read: the service does not start (startup.py). The operator's
    commands still run, so that `spool check` names it (`since_last_check`:
    see Spool.unopened), `spool dead` lists and `spool discard` removes what
    is truly lost, and `rotate-key` skips them.
    """
    try:
        unopened, total = spool.unopened(since_last_check=since_last_check)
    except sqlite3.Error as error:
        return ConfigError("DATA_DIR", f"cannot read the spool: {type(error).__name__}")
    if not unopened:
        return None
    problem = f"does not open {unopened} of the {total} messages in {spool.path}"
    return ConfigError(key_setting(config), f"{problem}: give the key that sealed them as well (deploy/README.md)")

"""The queue: a submission is accepted only once it is on disk (the promise an MTA makes when it answers
250); delivery leases each message, so that none is sent twice in normal operation, retries and gives up."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .. import config as settings
from ..outgoing import OutgoingMail
from .keys import Sealer, SealingError
from .storage import SpoolFile, SpoolUnavailable

log = logging.getLogger(__name__)

QUEUED = "queued"
DEAD = "dead"
PROBE_SUBMISSION = "health-probe"
# A message with its bookkeeping: s.* from `schedule`, o.* (ids, ages, kind, blob) from `outgoing`.
MESSAGES = "schedule AS s JOIN outgoing AS o ON o.id = s.id"
INSERT = "INSERT INTO outgoing (submission_id, kind, created_at, sealed) VALUES (?, ?, ?, zeroblob(?))"
SCHEDULE = (
    "INSERT INTO schedule (id, state, attempts, queued_at, next_attempt_at, lease_owner, lease_until)"
    " VALUES (?, 'queued', ?, ?, ?, ?, ?)"
)

# Oldest due first, at most `limit` rows, and rows only while the ones before them hold less than
# `max_bytes`: a lease is a promise to send within half of it, and one worker's SMTP session sends
# twenty 5 MB resumés one after another, so a batch is kept to what it can send in time. The lengths
# are taken in a query of their own: a window over `length(sealed)` itself copies every blob into the
# window's temporary table; length() alone reads the record's header, not the blob.
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


class SpoolFull(SpoolUnavailable):
    """The spool holds all it may (FORMS_SPOOL_MAX_BYTES, less the reserve for this form): 503, try later."""


@dataclass(frozen=True)
class SpoolBounds:
    """How much the spool may hold on disk, and how much of it only the forms that use the reserve may fill
    (the defaults' reasons: README.md, "Spool and delivery")."""

    max_bytes: int = settings.DEFAULTS["SPOOL_MAX_BYTES"]
    reserve_bytes: int = settings.DEFAULTS["SPOOL_RESERVE_BYTES"]

    def limit(self, reserve: bool) -> int:
        """What the spool may hold after a submission: all of it with the reserve, else all but the reserve."""
        return self.max_bytes if reserve else self.max_bytes - self.reserve_bytes


@dataclass(frozen=True)
class RetryPolicy:
    """When a message that could not be delivered is tried again, and when to give up: delays grow
    exponentially, with jitter, so that what an outage queued does not hit the server all at once."""

    base_seconds: float = settings.DEFAULTS["RETRY_BASE_SECONDS"]
    max_seconds: float = settings.DEFAULTS["RETRY_MAX_SECONDS"]
    max_age_seconds: float = settings.DEFAULTS["MAX_AGE_SECONDS"]

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure, always within [base, max]."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(attempts, 62))
        return random.uniform(max(self.base_seconds, ceiling / 2), ceiling)


@dataclass(frozen=True)
class Claimed:
    """A leased message's bookkeeping; `Queue.message` reads the message itself when it is sent."""

    id: int
    submission_id: str
    attempts: int
    created_at: float
    kind: str


class Queue(SpoolFile):
    """Accepting, claiming and recording what became of each message (the spool file: storage.py)."""

    def __init__(
        self,
        path: Path,
        sealer: Sealer,
        policy: RetryPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        bounds: SpoolBounds | None = None,
        **options: int,  # busy_timeout_ms, start_wait_ms (storage.py)
    ):
        self.clock = clock  # wall time of every schedule and age: tests give one they move themselves
        self.sealer = sealer
        self.policy = policy or RetryPolicy()
        self.bounds = bounds or SpoolBounds()
        self.accepted = threading.Event()  # set on accept so delivery starts at once
        super().__init__(path, **options)

    # -- accepting -----------------------------------------------------------

    def accept(self, submission_id: str, mails: Sequence[OutgoingMail], *, reserve: bool = False) -> None:
        """Store all emails of one submission, sealed, in one transaction: on disk when it returns
        (synchronous=FULL). Raises SpoolFull past the bounds (`reserve`: this form may use the reserve),
        SpoolUnavailable when it cannot write."""
        try:
            sealed = self._sealed_mails(mails)
            with self._write() as db:
                self._store(db, submission_id, sealed, reserve)
        except SpoolFull:
            log.warning("spool full: submission %s refused (FORMS_SPOOL_MAX_BYTES)", submission_id)
            raise
        except (OSError, SealingError, sqlite3.Error) as exc:  # full disk, lost key file...
            log.error("spool write failed for submission %s: %s", submission_id, type(exc).__name__)
            raise SpoolUnavailable(type(exc).__name__) from exc
        self.accepted.set()

    def _sealed_mails(self, mails: Sequence[OutgoingMail]) -> list[tuple[str, bytes]]:
        """(kind, token) of each email, sealed before the write lock is taken: other workers wait for
        that lock, not for this one's encryption."""
        return [(mail.kind, self.sealer.seal(mail.dumps())) for mail in mails]

    def _store(self, db, submission_id: str, sealed: Sequence[tuple[str, bytes]], reserve: bool) -> list[int]:
        """Insert the sealed emails, due now, within the bounds; returns the rows' ids. Shared by accept
        and probe, so the probe proves the very path a submission takes."""
        used, page_size = db.execute(USED_BYTES).fetchone()
        needed = sum(_pages(len(token), page_size) for _, token in sealed) * page_size
        if used + needed > self.bounds.limit(reserve):  # inside the write lock: workers count one after another
            raise SpoolFull("full")
        now, ids = self.clock(), []
        for kind, token in sealed:
            ids.append(_insert(db, submission_id, kind, now, token))
            db.execute(SCHEDULE, (ids[-1], 0, now, now, None, None))
        return ids

    def probe(self, mail: OutgoingMail) -> None:
        """Store `mail` as `accept` would and remove it in the same transaction, so that whatever would
        make a submission fail fails here, and no other connection ever sees the row (the health check).
        Raises SpoolUnavailable."""
        try:
            sealed = self._sealed_mails([mail])
            with self._write() as db:
                (entry_id,) = self._store(db, PROBE_SUBMISSION, sealed, reserve=True)  # past the bound: nobody
                _delete(db, entry_id)
        except (OSError, SealingError, sqlite3.Error) as exc:
            raise SpoolUnavailable(type(exc).__name__) from exc

    # -- delivering ----------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float, limit: int, max_bytes: int = CLAIM_BYTES) -> list[Claimed]:
        """Lease up to `limit` due messages to `owner`, oldest first; no row is added once those taken
        hold `max_bytes`. A crashed owner's messages become due for someone else once `lease_seconds`
        have passed."""
        now = self.clock()
        with self._write() as db:
            rows = db.execute(DUE, (now, now, limit, max_bytes)).fetchall()
            db.executemany(LEASE, [(owner, now + lease_seconds, row[0]) for row in rows])
        return [Claimed(*row) for row in sorted(rows)]

    def message(self, entry: Claimed) -> OutgoingMail | None:
        """A claimed email, read and authenticated whole (Fernet) before any of it is used; None when
        its row is gone (delivered by a worker whose lease overlapped ours). Raises InvalidToken when
        no configured key opens it, or it was altered."""
        token = self._sealed(entry.id)
        return token and OutgoingMail.loads(self.sealer.unseal(token), entry.kind)

    def delivered(self, entry_id: int) -> None:
        """Forget a delivered message, and the last delivery error; secure_delete zeroes its bytes in the
        new page versions, and `erase` then removes the older ones from the files."""
        with self._write() as db:
            _delete(db, entry_id)
            db.execute("DELETE FROM delivery_error")

    def split(self, entry: Claimed, groups: Sequence[tuple[str, ...]]) -> list[int]:
        """Replace a row by one row per group of its recipients, each sealed anew; their ids, or [] when
        the row is gone. They keep its ages, attempts and retry budget, and its lease, so no other
        worker sends them before the caller schedules them or marks them dead."""
        mail = self.message(entry)
        if mail is None:
            return []
        sealed = [(entry.kind, self.sealer.seal(replace(mail, recipients=group).dumps())) for group in groups]
        with self._write() as db:
            row = db.execute(
                f"SELECT o.created_at, s.attempts, s.queued_at, s.lease_owner, s.lease_until FROM {MESSAGES}"
                " WHERE s.id = ?",
                (entry.id,),
            ).fetchone()
            if row is None:
                return []
            created_at, attempts, queued_at, owner, until = row
            _delete(db, entry.id)
            ids = [_insert(db, entry.submission_id, kind, created_at, token) for kind, token in sealed]
            db.executemany(SCHEDULE, [(entry_id, attempts, queued_at, queued_at, owner, until) for entry_id in ids])
            return ids

    def retry_later(self, entry_id: int, error: str, *, alert: bool = False) -> None:
        """Schedule another attempt after a temporary failure, or give up when too old, unless `alert`: only
        a person can fix it (relay.ActionRequired), and the message waits for them. `error` (delivery.error_code)
        is also the spool's last delivery error, from when it first came until a delivery succeeds."""
        now = self.clock()
        with self._write() as db:
            db.execute(
                "INSERT INTO delivery_error VALUES (1, ?, ?, ?) ON CONFLICT DO UPDATE SET error = excluded.error,"
                " since = iif(error = excluded.error, since, excluded.since), alert = excluded.alert",
                (now, error, alert),
            )
            row = db.execute("SELECT attempts, queued_at FROM schedule WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return  # delivered meanwhile by a worker whose lease overlapped ours
            attempts, queued_at = row[0] + 1, row[1]
            if alert or now - queued_at < self.policy.max_age_seconds:
                db.execute(
                    "UPDATE schedule SET attempts = ?, next_attempt_at = ?, last_error = ?,"
                    " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                    (attempts, now + self.policy.delay(attempts), error, entry_id),
                )
                return
        self.dead(entry_id, f"expired after {error}")

    def dead(self, entry_id: int, reason: str) -> None:
        """Give up on a message (permanent refusal, too old, unreadable) but keep it, logged at ERROR with
        the commands that handle it."""
        with self._write() as db:
            db.execute(
                "UPDATE schedule SET state = 'dead', attempts = attempts + 1, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (reason, entry_id),
            )
            row = db.execute(
                f"SELECT o.kind, o.submission_id, s.attempts FROM {MESSAGES} WHERE s.id = ?", (entry_id,)
            ).fetchone()
        if row:
            log.error(
                "DEAD spool entry %d (%s, submission %s) after %d attempts: %s; kept: once the cause is fixed,"
                " `flask --app forms_service spool requeue %d`, or to give it up, `flask --app forms_service"
                " spool discard %d`",
                entry_id,
                *row,
                reason,
                entry_id,
                entry_id,
            )

    def drop(self, entry_id: int, reason: str) -> None:
        """Forget an acknowledgement that can never be delivered (a permanent refusal: a mistyped
        address); it holds nothing the association needs, and kept dead it would alarm forever."""
        with self._write() as db:
            row = db.execute("SELECT submission_id FROM outgoing WHERE id = ?", (entry_id,)).fetchone()
            _delete(db, entry_id)
        if row:
            log.warning(
                "dropped acknowledgement spool entry %d (submission %s): %s; the association's copy is not affected",
                entry_id,
                row[0],
                reason,
            )

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
                f"SELECT min(max(s.next_attempt_at, coalesce(s.lease_until, 0))) FROM {MESSAGES}"
                " WHERE s.state = 'queued'"
            ).fetchone()
        return float("inf") if due is None else max(0.0, due - self.clock())


def _insert(db, submission_id: str, kind: str, created_at: float, token: bytes) -> int:
    """Insert a sealed row, its token written into a zeroblob of its size (incremental blob I/O): SQLite
    never holds a copy of a bound value nor of the record. Returns its id."""
    entry_id = db.execute(INSERT, (submission_id, kind, created_at, len(token))).lastrowid
    with db.blobopen("outgoing", "sealed", entry_id) as blob:
        blob.write(token)
    return entry_id


def _delete(db, entry_id: int) -> None:
    """Remove a message: its sealed row and its bookkeeping."""
    db.execute("DELETE FROM outgoing WHERE id = ?", (entry_id,))
    db.execute("DELETE FROM schedule WHERE id = ?", (entry_id,))


def _pages(blob_bytes: int, page_size: int) -> int:
    """Pages a new row of `blob_bytes` takes at most: its overflow pages, rounded up, and one for its cell
    and the b-tree's growth, so that what the bounds count stays above what the file really holds."""
    return -(-blob_bytes // (page_size - OVERFLOW_POINTER)) + 1

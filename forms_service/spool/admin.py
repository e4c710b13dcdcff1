"""The spool as the operator sees it (`spool ...` commands, health check, start-up): figures, dead letters,
and which rows the configured keys open. Bookkeeping only: ids, times, counts, error codes."""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.fernet import InvalidToken

from ..outgoing import ACKNOWLEDGEMENT
from .queue import DEAD, MESSAGES, QUEUED, USED_BYTES, Queue, _delete

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadEntry:
    """What an operator sees of a dead message: bookkeeping only, nothing personal."""

    id: int
    submission_id: str
    created_at: float
    attempts: int
    last_error: str | None
    kind: str


@dataclass(frozen=True)
class DeliveryError:
    """The last failed delivery attempt (Queue.retry_later), until one succeeds: what (relay.py's words), since
    when (the same error again keeps the time it first came), and whether only a person can fix it."""

    since: float
    error: str
    alert: bool


@dataclass(frozen=True)
class SpoolStats:
    """Health figures without personal data (for healthz and `spool status`)."""

    queued: int
    dead: int
    oldest_age_seconds: float | None
    used_bytes: int = 0  # what the rows take on disk, the figure the bounds apply to (health.py warns)
    delivery_error: DeliveryError | None = None

    def as_dict(self) -> dict:
        return {"depth": self.queued, "dead": self.dead, "oldest_age_seconds": self.oldest_age_seconds}


class Spool(Queue):
    """The deployment's spool: the queue (queue.py), and what its operator asks of it."""

    def stats(self) -> SpoolStats:
        """Queue depth, dead count, the age of the oldest waiting message, the last delivery error."""
        with self._connected() as db:
            counts = dict(db.execute(f"SELECT s.state, count(*) FROM {MESSAGES} GROUP BY s.state").fetchall())
            (oldest,) = db.execute(f"SELECT min(o.created_at) FROM {MESSAGES} WHERE s.state = 'queued'").fetchone()
            used = db.execute(USED_BYTES).fetchone()[0]
            error = db.execute("SELECT since, error, alert FROM delivery_error").fetchone()
        age = None if oldest is None else max(0.0, self.clock() - oldest)
        return SpoolStats(counts.get(QUEUED, 0), counts.get(DEAD, 0), age, used, error and DeliveryError(*error))

    def list_dead(self) -> list[DeadEntry]:
        """Dead messages, oldest first."""
        with self._connected() as db:
            rows = db.execute(
                f"SELECT s.id, o.submission_id, o.created_at, s.attempts, s.last_error, o.kind FROM {MESSAGES}"
                " WHERE s.state = 'dead' ORDER BY o.created_at, s.id"
            ).fetchall()
        return [DeadEntry(*row) for row in rows]

    def dead_copies(self) -> int:
        """Dead rows holding the association's copy: mail nobody has read yet."""
        with self._connected() as db:
            (count,) = db.execute(
                f"SELECT count(*) FROM {MESSAGES} WHERE s.state = 'dead' AND o.kind != ?", (ACKNOWLEDGEMENT,)
            ).fetchone()
        return count

    def discard(self, entry_id: int) -> bool:
        """Delete one dead message for good (the operator decided); False if no dead row has that id."""
        with self._write() as db:
            row = db.execute(
                f"SELECT o.kind, o.submission_id FROM {MESSAGES} WHERE s.id = ? AND s.state = 'dead'", (entry_id,)
            ).fetchone()
            if row:
                _delete(db, entry_id)
        if row:
            log.warning("discarded dead spool entry %d (%s, submission %s) at the operator's request", entry_id, *row)
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

    def make_due(self) -> int:
        """Make every waiting, unleased message due now (operator's "retry now")."""
        now = self.clock()
        with self._write() as db:
            return db.execute(
                "UPDATE schedule SET next_attempt_at = ? WHERE state = 'queued'"
                " AND (lease_until IS NULL OR lease_until <= ?)",
                (now, now),
            ).rowcount

    def unreadable(self, *, since_last_check: bool = False) -> tuple[int, int]:
        """(rows no configured key opens, all rows), checking signatures only (Sealer.signed).

        A clean check records the last row id it saw and the keys it used; `since_last_check` (monitoring,
        every few minutes) then reads only the rows after it while every recorded key is still configured:
        a row changes only by `rotate-key`, and opens with any key set holding the one that sealed it.
        """
        keys = self.sealer.fingerprints()
        with self._connected() as db:
            after = _checked_through(db, keys) if since_last_check else 0
            (total,) = db.execute("SELECT count(*) FROM outgoing").fetchone()
            ids = [entry_id for (entry_id,) in db.execute("SELECT id FROM outgoing WHERE id > ?", (after,))]
        unreadable = 0
        for entry_id in ids:  # one row in memory at a time
            token = self._sealed(entry_id)
            if token is not None and not self.sealer.signed(token):
                unreadable += 1
        if not unreadable:
            with self._write() as db:
                db.execute(
                    "INSERT OR REPLACE INTO opened_check VALUES (1, ?, ?)", (" ".join(sorted(keys)), max([after, *ids]))
                )
        return unreadable, total

    def reseal(self) -> tuple[int, list[int]]:
        """Re-encrypt every row with the current key, one row per transaction so that neither memory
        nor the wait of concurrent accepts grows with the spool; returns how many rows were re-sealed,
        and the ids of rows no known key opens, which are skipped (and marked dead, as delivery would)."""
        with self._connected() as db:
            ids = [entry_id for (entry_id,) in db.execute("SELECT id FROM outgoing ORDER BY id")]
        done, unreadable = 0, []
        for entry_id in ids:
            try:
                with self._write() as db:
                    row = db.execute("SELECT sealed FROM outgoing WHERE id = ?", (entry_id,)).fetchone()
                    if row:  # else delivered meanwhile
                        db.execute(
                            "UPDATE outgoing SET sealed = ? WHERE id = ?", (self.sealer.reseal(row[0]), entry_id)
                        )
                        done += 1
            except InvalidToken:  # nothing was written
                unreadable.append(entry_id)
                self.dead(entry_id, "InvalidToken")
        self.erase()  # the rows sealed with the old key go from the WAL too
        return done, unreadable


def utc(timestamp: float) -> str:
    """UTC time to the second, as operators compare it with mail server logs."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _checked_through(db: sqlite3.Connection, keys: frozenset[str]) -> int:
    """The last row id a clean check found opened with keys all still in `keys`, else 0."""
    row = db.execute("SELECT keys, through_id FROM opened_check").fetchone()
    return row[1] if row and set(row[0].split()) <= keys else 0

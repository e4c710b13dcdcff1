"""The spool file's tables, and the numbered migrations that bring a file of any known layout to this one.

PRAGMA user_version is the file's layout. Opening a file migrates it to LAYOUT in one write transaction that
also sets the number: a crash leaves the file as it was, and workers opening it at once migrate it once. A
layout this release does not know (a newer release wrote it) is refused (README.md, "Spool and delivery").

To change the layout: write a function that takes a file from the current layout to the next and add it to
MIGRATIONS; keep the current layout's statements as tests/spool/layout_N.sql (what `sqlite3 FILE .schema`
prints) and test what the migration keeps (tests/spool/test_schema.py). A new file is made at layout 2 and
migrated on from there: the statements below are layout 2's, never changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..outgoing import ACKNOWLEDGEMENT, ASSOCIATION

# A message is its sealed row, written once (`outgoing`), and its bookkeeping, which changes while it
# waits (`schedule`): SQLite rewrites a whole record on any UPDATE, so a lease kept beside a 9 MB blob
# would copy it into memory and the WAL at every claim and retry. Postfix keeps a queue file apart from
# its state the same way. Neither holds personal data but inside `sealed`.
# AUTOINCREMENT: ids are never reused, so a late `delivered(id)` from a worker whose lease ran out can
# never delete a newer row. `sealed` comes last: SQLite writes a trailing zeroblob without making it in
# memory (Queue._store), while one followed by other columns is made whole and copied into the record.
OUTGOING = f"""CREATE TABLE outgoing (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('{ASSOCIATION}', '{ACKNOWLEDGEMENT}')),
    created_at REAL NOT NULL,
    sealed BLOB NOT NULL
)"""
SCHEDULE = """CREATE TABLE schedule (
    id INTEGER PRIMARY KEY,  -- outgoing.id
    state TEXT NOT NULL CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT
)"""
SCHEDULE_DUE = "CREATE INDEX schedule_due ON schedule (state, next_attempt_at)"
# What the last clean check of the sealed rows (Spool.unreadable) found: every row up to `through_id`
# opens with the keys named (Sealer.fingerprints). One row.
OPENED_CHECK = (
    "CREATE TABLE opened_check (only INTEGER PRIMARY KEY CHECK (only = 1),"
    " keys TEXT NOT NULL, through_id INTEGER NOT NULL)"
)


class UnknownLayout(Exception):
    """The file's layout is none this release can migrate from (a newer release made it)."""


def _create(db: sqlite3.Connection) -> None:
    """Layout 2 in a new, empty file."""
    if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise UnknownLayout(0)  # tables, and no layout: not a file this service made
    for statement in (OUTGOING, SCHEDULE, SCHEDULE_DUE, OPENED_CHECK):
        db.execute(statement)


def _schedule_alone(db: sqlite3.Connection) -> None:
    """Layout 1 to 2: `outgoing` loses its copies of the bookkeeping (and the triggers that kept them in
    step with `schedule`); a row without a kind becomes the association's copy, as layout 1 handled it.
    The table is copied whole once, ids and id sequence kept: a release of layout 1 then can neither insert
    into the file (503, nothing kept) nor start on it, rather than spool rows it would not schedule."""
    (sequence,) = db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'outgoing'").fetchone()
    db.execute("ALTER TABLE outgoing RENAME TO outgoing_1")
    db.execute(OUTGOING)
    db.execute(
        "INSERT INTO outgoing (id, submission_id, kind, created_at, sealed)"
        f" SELECT id, submission_id, coalesce(kind, '{ASSOCIATION}'), created_at, sealed FROM outgoing_1"
    )
    db.execute("DROP TABLE outgoing_1")  # its index and triggers with it
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'outgoing'")
    db.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'outgoing', max(?, coalesce(max(id), 0)) FROM outgoing",
        (sequence,),
    )


def _delivery_error(db: sqlite3.Connection) -> None:
    """Layout 2 to 3, a table added: the last failed delivery attempt, until one succeeds (`spool check`)."""
    db.execute(
        "CREATE TABLE delivery_error (only INTEGER PRIMARY KEY CHECK (only = 1),"
        " since REAL NOT NULL, error TEXT NOT NULL, alert INTEGER NOT NULL)"
    )


# From each layout: the layout its migration reaches, and the migration.
MIGRATIONS: dict[int, tuple[int, Callable[[sqlite3.Connection], None]]] = {
    0: (2, _create),
    1: (2, _schedule_alone),
    2: (3, _delivery_error),
}
LAYOUT = max(target for target, _ in MIGRATIONS.values())


def migrate(db: sqlite3.Connection) -> None:
    """Bring the file to LAYOUT, in the write transaction `db` holds; UnknownLayout if it cannot."""
    (layout,) = db.execute("PRAGMA user_version").fetchone()
    if layout == LAYOUT:
        return
    while layout != LAYOUT:
        if layout not in MIGRATIONS:
            raise UnknownLayout(layout)
        layout, migration = MIGRATIONS[layout]
        migration(db)
    db.execute(f"PRAGMA user_version = {LAYOUT}")

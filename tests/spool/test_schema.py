"""The spool file's layout: a new file, every migration from an older layout (one test each, and a check
that none lacks one), and a layout this release does not know refused with one line."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forms_service.config import ConfigError
from forms_service.outgoing import ACKNOWLEDGEMENT, ASSOCIATION
from forms_service.spool import Sealer, Spool, spool_from_config
from forms_service.spool.schema import LAYOUT, MIGRATIONS
from tests.spool.conftest import outgoing
from tests.spool.test_delivery import make_deliverer

# The statements that made each older layout (layout_1.sql: what its releases ran), by number.
LAYOUTS = {int(path.stem.removeprefix("layout_")): path for path in Path(__file__).parent.glob("layout_*.sql")}


def schema(path: Path) -> dict:
    """What defines a file's layout: its tables, indexes and triggers as SQLite stores them, its number."""
    with sqlite3.connect(path) as db:
        statements = db.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        (layout,) = db.execute("PRAGMA user_version").fetchone()
        (auto_vacuum,) = db.execute("PRAGMA auto_vacuum").fetchone()
    db.close()
    return {"statements": sorted(statements), "layout": layout, "auto_vacuum": auto_vacuum}


def new_file(tmp_path: Path) -> Path:
    """A spool file as this release makes it."""
    path = tmp_path / "new" / "spool.sqlite3"
    Spool(path, Sealer([Fernet.generate_key()]))
    return path


def layout_1(path: Path, key: bytes) -> None:
    """A spool file of layout 1 holding what such a release left: a queued email, an acknowledgement
    leased after a failed try, a dead one, a row from before kinds were recorded, and a delivered one
    (gone, its id never to come back). Rows written as layout 1 wrote them; its triggers filled `schedule`."""
    path.parent.mkdir(mode=0o700, parents=True)
    with sqlite3.connect(path, isolation_level=None) as db:
        db.executescript(LAYOUTS[1].read_text())
        db.execute("PRAGMA journal_mode = WAL")
        rows = [
            ("sub-1", "queued", 0, None, None, None, ASSOCIATION),
            ("sub-1", "queued", 1, "worker:1", 50.0, "TemporaryRelayError: 451", ACKNOWLEDGEMENT),
            ("sub-2", "dead", 3, None, None, "PermanentRelayError: message refused: 550", ASSOCIATION),
            ("sub-3", "queued", 0, None, None, None, None),
            ("sub-4", "queued", 0, None, None, None, ASSOCIATION),
        ]
        for number, (submission, state, attempts, owner, until, error, kind) in enumerate(rows, 1):
            db.execute(
                "INSERT INTO outgoing (submission_id, sealed, state, attempts, created_at, queued_at, next_attempt_at,"
                " lease_owner, lease_until, last_error, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (submission, Fernet(key).encrypt(outgoing("old", number).dumps()), state, attempts, number, number)
                + (number, owner, until, error, kind),
            )
        db.execute("DELETE FROM outgoing WHERE id = 5")  # delivered
    db.close()


def test_a_new_file_is_made_at_this_layout(tmp_path):
    made = schema(new_file(tmp_path))
    assert (made["layout"], made["auto_vacuum"]) == (LAYOUT, 2)  # INCREMENTAL: `erase` gives pages back
    assert [name for name, _ in made["statements"]] == [
        "delivery_error",
        "opened_check",
        "outgoing",
        "schedule",
        "schedule_due",
    ]


def test_every_migration_starts_from_a_layout_kept_here():
    """A migration added to schema.MIGRATIONS needs the statements of the layout it starts from here
    (layout_N.sql: what `sqlite3 spool.sqlite3 .schema` prints), and a test of what it keeps."""
    assert set(MIGRATIONS) == {0, *LAYOUTS}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_file_of_an_older_layout_ends_as_a_new_one(tmp_path, layout):
    path = tmp_path / "old" / "spool.sqlite3"
    path.parent.mkdir(mode=0o700)
    with sqlite3.connect(path, isolation_level=None) as db:
        db.executescript(LAYOUTS[layout].read_text())
    db.close()
    Spool(path, Sealer([Fernet.generate_key()]))
    assert schema(path) == schema(new_file(tmp_path))


def test_a_spool_of_layout_1_opens_as_this_layout_keeps_every_message_and_delivers(app, tmp_path, smtp_server):
    key, spool_path = Fernet.generate_key(), tmp_path / "old" / "spool.sqlite3"
    layout_1(spool_path, key)
    with ThreadPoolExecutor(3) as workers:  # three workers starting at once migrate it once, all opening it
        for started in [workers.submit(Spool, spool_path, Sealer([key])) for _ in range(3)]:
            started.result()
    assert schema(spool_path) == schema(new_file(tmp_path))
    with sqlite3.connect(spool_path) as db:
        kept = db.execute(
            "SELECT o.id, o.submission_id, o.kind, s.state, s.attempts, s.lease_owner, s.last_error"
            " FROM outgoing AS o JOIN schedule AS s ON s.id = o.id ORDER BY o.id"
        ).fetchall()
    db.close()
    assert kept == [
        (1, "sub-1", ASSOCIATION, "queued", 0, None, None),
        (2, "sub-1", ACKNOWLEDGEMENT, "queued", 1, "worker:1", "TemporaryRelayError: 451"),
        (3, "sub-2", ASSOCIATION, "dead", 3, None, "PermanentRelayError: message refused: 550"),
        (4, "sub-3", ASSOCIATION, "queued", 0, None, None),  # no kind: the association's copy, as before
    ]
    spool = Spool(spool_path, Sealer([key]))
    spool.accept("new", [outgoing("new")])
    assert [entry.id for entry in spool.claim("check", 60, 100)][-1] == 6  # 5 was delivered: never reused
    spool.release([1, 2, 4, 6], "check")
    make_deliverer(app, spool).deliver_all()
    assert sorted(message.data for message in smtp_server.messages) == sorted(
        mail.data for mail in (outgoing("old", 1), outgoing("old", 2), outgoing("old", 4), outgoing("new"))
    )
    assert [entry.id for entry in spool.list_dead()] == [3] and spool.stats().queued == 0


def test_a_spool_of_layout_2_keeps_its_messages_and_records_delivery_errors(tmp_path, spool_key):
    """Layout 3 adds the last delivery error (`spool check`, `spool status`) and changes nothing else."""
    path = tmp_path / "old" / "spool.sqlite3"
    path.parent.mkdir(mode=0o700)
    with sqlite3.connect(path, isolation_level=None) as db:
        db.executescript(LAYOUTS[2].read_text())
        token = Fernet(spool_key).encrypt(outgoing("old").dumps())
        db.execute("INSERT INTO outgoing VALUES (7, 'sub', ?, 1.0, ?)", (ASSOCIATION, token))
        db.execute("INSERT INTO schedule VALUES (7, 'queued', 2, 1.0, 1.0, NULL, NULL, 'TemporaryRelayError: 451')")
    db.close()
    spool = Spool(path, Sealer([spool_key]))
    assert schema(path) == schema(new_file(tmp_path))
    (entry,) = spool.claim("check", 60, 10)
    assert (entry.id, entry.attempts, spool.message(entry)) == (7, 2, outgoing("old"))
    spool.retry_later(entry.id, "ActionRequired: authentication refused: 535", alert=True)
    assert spool.stats().delivery_error.error == "ActionRequired: authentication refused: 535"


@pytest.mark.parametrize("layout", [LAYOUT + 1, 0])
def test_a_layout_this_release_does_not_know_is_refused_with_one_line(tmp_path, layout):
    """A newer release's file (a rollback across a migration), or tables without a layout: the service
    does not start, names the folder, and leaves the file as it was."""
    path = tmp_path / "data" / "spool.sqlite3"
    path.parent.mkdir(mode=0o700)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE outgoing (id INTEGER PRIMARY KEY)")
        db.execute(f"PRAGMA user_version = {layout}")
    db.close()
    before = schema(path)
    with pytest.raises(ConfigError) as refused:
        spool_from_config({"DATA_DIR": str(path.parent), "SPOOL_KEY": Fernet.generate_key().decode()})
    assert str(refused.value) == (
        f"forms_service: FORMS_DATA_DIR holds {path} in layout {layout}, which this release does not know (it"
        f" knows up to {LAYOUT}): run the release that wrote it, or a newer one (deploy/README.md, section 8)"
    )
    assert schema(path) == before


def test_a_migration_that_fails_leaves_the_file_as_it_was(tmp_path, spool_path, monkeypatch):
    key = Fernet.generate_key()
    layout_1(spool_path, key)
    before, (layout, migration) = schema(spool_path), MIGRATIONS[1]

    def failing(db):
        migration(db)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(MIGRATIONS, 1, (layout, failing))
    with pytest.raises(ConfigError, match="^forms_service: FORMS_DATA_DIR cannot hold the spool: "):
        spool_from_config({"DATA_DIR": str(spool_path.parent), "SPOOL_KEY": key.decode()})
    assert schema(spool_path) == before

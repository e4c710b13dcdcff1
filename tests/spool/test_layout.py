"""The spool keeps its bookkeeping apart from the sealed blobs, and stays one file two releases share.

A claim, a retry, a dead letter or a requeue must not rewrite a 9 MB row (the
WAL shows it); and during a blue/green switch or after `deploy/release
rollback`, the previous release (8b3365e, taken from git history) reads,
claims and deletes on the same file as this one.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from forms_service.sealing import Sealer
from forms_service.spool import LAYOUT, SCHEMA, Spool
from tests.spool.conftest import FAST_RETRY, opened, outgoing

PREVIOUS_RELEASE = "8b3365e"  # the last release with all bookkeeping in `outgoing`
PREVIOUS_PACKAGE = "forms_service_8b3365e"
REPOSITORY = Path(__file__).resolve().parents[2]
MEGABYTE = 1024 * 1024


def resume(marker: str) -> object:
    """An email holding a 5 MB resumé's worth of text, as the volunteer form spools one."""
    return outgoing(marker, body=(os.urandom(57).hex().encode() + b"\r\n") * (5 * MEGABYTE // 116))


def wal_bytes(spool: Spool) -> int:
    wal = spool.path.with_name(spool.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def page_size(spool: Spool) -> int:
    with closing(sqlite3.connect(spool.path)) as db:
        return db.execute("PRAGMA page_size").fetchone()[0]


def test_bookkeeping_writes_a_few_pages_not_the_blob(clocked_spool, clock):
    """After each step the eraser's checkpoint (Spool.erase, as the service runs it) empties the WAL:
    what the step wrote is then the WAL's size, which an operator sees with `ls -l`."""
    spool = clocked_spool
    spool.accept("cv", [resume("cv")])
    few_pages = 8 * page_size(spool)

    def written(step) -> int:
        assert spool.erase()
        assert wal_bytes(spool) == 0
        step()
        return wal_bytes(spool)

    claimed = []
    assert written(lambda: claimed.extend(spool.claim("worker", 30, 1))) < few_pages
    assert len(claimed[0].mail.data) > 5 * MEGABYTE - 4096
    assert written(lambda: spool.retry_later(claimed[0].id, "421")) < few_pages
    clock.advance(1)
    assert written(lambda: spool.release([entry.id for entry in spool.claim("worker", 30, 1)], "worker")) < few_pages
    assert written(lambda: spool.dead(claimed[0].id, "550")) < few_pages
    assert written(lambda: spool.requeue()) < few_pages
    assert written(spool.make_due) < few_pages
    assert spool.stats().queued == 1


# -- the previous release on the same file ------------------------------------------------------


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """The previous release's spool module, from git history, imported as a package of its own."""
    found = (
        shutil.which("git")
        and subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "--verify", "--quiet", f"{PREVIOUS_RELEASE}^{{commit}}"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not found:
        pytest.skip(
            f"the previous release ({PREVIOUS_RELEASE}) is not in this checkout's git history"
            " (an archive or a shallow clone): rollback compatibility not checked"
        )
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", PREVIOUS_RELEASE, "forms_service"], capture_output=True, check=True
    ).stdout
    root = tmp_path_factory.mktemp("previous-release")
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    (root / "forms_service").rename(root / PREVIOUS_PACKAGE)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(f"{PREVIOUS_PACKAGE}.spool")
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.split(".")[0] == PREVIOUS_PACKAGE]:
            del sys.modules[name]


@pytest.fixture
def previous_spool(previous, spool_path, spool_key, clock):
    """A factory: the previous release's Spool on the test's file, key and clock (one per process)."""
    return lambda: previous.Spool(
        spool_path, previous.Sealer([spool_key]), previous.RetryPolicy(**vars(FAST_RETRY)), clock=clock
    )


def test_the_previous_release_delivers_everything_this_one_spooled(clocked_spool, clock, previous_spool):
    """Rows this release leased, retried or gave up on look queued to the previous one (it reads only
    `outgoing`): after a rollback they are sent, some a second time at worst, none lost."""
    spool = clocked_spool
    mails = [outgoing("new", number) for number in range(5)]
    spool.accept("sub-a", mails[:2])
    spool.accept("sub-b", mails[2:])
    first, second, _ = spool.claim("new-worker", 30, 3)
    spool.retry_later(first.id, "421")
    spool.dead(second.id, "550")
    rollback = previous_spool()
    claimed = rollback.claim("old-worker", 30, 10)
    assert sorted(entry.mail.data for entry in claimed) == sorted(mail.data for mail in mails)
    for entry in claimed:
        rollback.delivered(entry.id)
    assert spool.stats().queued == spool.stats().dead == 0
    assert spool.claim("new-worker", 30, 10) == [] and spool.list_dead() == []


def test_this_release_keeps_the_state_the_previous_one_left(clocked_spool, clock, previous_spool, spool_path, sealer):
    """An upgrade over a file the previous release wrote: its leases, retries and dead rows carry on."""
    old = previous_spool()
    old.accept("sub", [outgoing("old", number) for number in range(4)])
    (leased,) = old.claim("old-worker", 30, 1)
    (retried,) = old.claim("old-worker", 30, 1)
    old.retry_later(retried.id, "421")
    (dead,) = old.claim("old-worker", 30, 1)
    old.dead(dead.id, "550")
    spool = Spool(spool_path, sealer, FAST_RETRY, clock=clock)
    with closing(sqlite3.connect(spool_path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LAYOUT
    ((dead_id, attempts, error),) = [(entry.id, entry.attempts, entry.last_error) for entry in spool.list_dead()]
    assert (dead_id, attempts, error) == (dead.id, 1, "550")
    assert spool.stats().queued == 3
    (fresh,) = spool.claim("new-worker", 600, 10)  # neither the leased row nor the retried one, not yet due
    assert opened(fresh) == outgoing("old", 3).data
    clock.advance(1)
    (again,) = spool.claim("new-worker", 600, 10)
    assert (again.id, again.attempts) == (retried.id, 1)
    clock.advance(30)  # the old worker died with its lease
    (taken_over,) = spool.claim("new-worker", 600, 10)
    assert taken_over.id == leased.id


def test_both_releases_take_turns_on_one_file(clocked_spool, clock, previous_spool):
    """A blue/green switch: both instances run on the spool for a while; whatever the previous
    release does (insert, lease, retry, delete) this one sees."""
    spool = clocked_spool
    old = previous_spool()
    old.accept("old-sub", [outgoing("old", 1), outgoing("old", 2)])
    spool.accept("new-sub", [outgoing("new", 1)])
    (leased,) = old.claim("old-worker", 30, 1)
    assert leased.mail.data == outgoing("old", 1).data
    taken = spool.claim("new-worker", 30, 10)
    assert [opened(entry) for entry in taken] == [outgoing("old", 2).data, outgoing("new", 1).data]
    old.retry_later(leased.id, "421")
    for entry in taken:
        spool.delivered(entry.id)
    assert spool.claim("new-worker", 30, 10) == []  # retried by the old release: not due yet
    clock.advance(1)
    (retried,) = spool.claim("new-worker", 30, 10)
    assert (retried.id, retried.attempts) == (leased.id, 1)
    (again,) = old.claim("old-worker", 30, 10)  # the known overlap: our lease is not in `outgoing`
    old.delivered(again.id)
    assert spool.stats().queued == 0
    spool.delivered(retried.id)  # already gone: nothing happens


def test_the_previous_release_splits_kills_requeues_and_discards_on_a_shared_file(
    clocked_spool, clock, previous_spool, previous
):
    spool = clocked_spool
    old = previous_spool()
    spool.accept("sub", [outgoing("shared", 1), outgoing("shared", 2)])
    first, second = old.claim("old-worker", 30, 10)
    halves = [
        previous.OutgoingMail(first.mail.message_id, first.mail.sender, (recipient,), first.mail.data)
        for recipient in ("a@example.org", "b@example.org")
    ]
    parts = old.split(first.id, halves)
    assert spool.claim("new-worker", 30, 10) == []  # the halves keep the old worker's lease
    old.dead(parts[0], "550")
    old.dead(second.id, "550")
    assert {(entry.id, entry.attempts, entry.last_error) for entry in spool.list_dead()} == {
        (parts[0], 1, "550"),
        (second.id, 1, "550"),
    }
    assert old.discard(second.id) and old.requeue() == 1
    assert [entry.id for entry in spool.list_dead()] == [] and spool.stats().queued == 2
    assert [(entry.id, entry.attempts) for entry in spool.claim("new-worker", 600, 10)] == [(parts[0], 0)]
    clock.advance(30)  # the lease the old worker kept on the other half runs out
    assert [entry.mail.recipients for entry in spool.claim("new-worker", 30, 10)] == [("b@example.org",)]


def _open_in_child(spool_path: Path, key: bytes, results) -> None:  # pragma: no cover - child process
    Spool(spool_path, Sealer([key]), FAST_RETRY)
    results.put("opened")


def test_workers_opening_an_older_file_at_once_move_its_bookkeeping_once(spool_path, spool_key, sealer):
    """gunicorn's workers start together on the file the previous release left: one schedule row per row."""
    spool_path.parent.mkdir(mode=0o700)
    with closing(sqlite3.connect(spool_path, isolation_level=None)) as old:
        old.execute("PRAGMA journal_mode = WAL")
        old.executescript(SCHEMA)
        for number in range(20):
            old.execute(
                "INSERT INTO outgoing (submission_id, sealed, created_at, queued_at, next_attempt_at,"
                " attempts, last_error, kind) VALUES (?, ?, 1, 1, 1, 2, '421', 'association')",
                (f"old-{number}", sealer.seal(outgoing("old", number).dumps())),
            )
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_open_in_child, args=(spool_path, spool_key, results)) for _ in range(4)]
    for child in children:
        child.start()
    assert [results.get(timeout=30) for _ in children] == ["opened"] * 4
    for child in children:
        child.join(10)
        assert child.exitcode == 0
    spool = Spool(spool_path, sealer, FAST_RETRY)
    claimed = spool.claim("new-worker", 30, 100)
    assert [(opened(entry), entry.attempts) for entry in claimed] == [
        (outgoing("old", number).data, 2) for number in range(20)
    ]

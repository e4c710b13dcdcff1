"""The spool keeps every accepted message durably, sealed, and leases it to one sender at a time."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sqlite3
import threading
import time

import pytest
from cryptography.fernet import Fernet, InvalidToken

from forms_service.config import DEFAULTS, ConfigError
from forms_service.outgoing import ACKNOWLEDGEMENT, ASSOCIATION
from forms_service.spool import (
    RetryPolicy,
    Sealer,
    Spool,
    SpoolUnavailable,
    spool_from_config,
)
from forms_service.spool.admin import DeliveryError
from forms_service.spool.queue import MESSAGES
from tests.spool.conftest import FAST_RETRY, opened, outgoing


def raw_rows(spool: Spool) -> list[tuple]:
    """The table as another process would see it, through a separate connection."""
    with sqlite3.connect(spool.path) as db:
        return db.execute(
            f"SELECT s.id, o.submission_id, s.state, s.attempts, s.next_attempt_at, s.last_error FROM {MESSAGES}"
        ).fetchall()


def test_accepted_submission_survives_sigkill_right_after_accept(spool, sealer):
    """accept() returning means committed: a SIGKILL just after cannot lose it."""
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        spool.accept("sub-1", [outgoing("kill", 1), outgoing("kill", 2)])
        writer.send("accepted")
        signal.pause()  # until killed
    assert reader.poll(10) and reader.recv() == "accepted"
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    survivor = Spool(spool.path, sealer)
    claimed = survivor.claim("after-crash", 30, 10)
    assert sorted(opened(survivor, entry).message_id for entry in claimed) == [
        "<kill.1@forms.test>",
        "<kill.2@forms.test>",
    ]
    assert {entry.submission_id for entry in claimed} == {"sub-1"}


def test_durability_settings(spool):
    db = spool._connection()
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: fsync on every commit
    assert db.execute("PRAGMA secure_delete").fetchone() == (1,)
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_spool_files_are_private(spool):
    spool.accept("sub", [outgoing("mode")])
    assert spool.path.stat().st_mode & 0o777 == 0o600
    assert spool.path.with_name(spool.path.name + "-wal").stat().st_mode & 0o777 == 0o600
    assert spool.path.parent.stat().st_mode & 0o777 == 0o700


def test_a_submission_is_stored_whole_or_not_at_all(spool):
    """A full disk in the middle of a submission leaves nothing half-stored, and says so."""
    db = spool._connection()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages + 40}")  # room for one 100 kB message, not two
    big = [outgoing("full", number, os.urandom(100_000)) for number in (1, 2)]
    with pytest.raises(SpoolUnavailable):
        spool.accept("sub-full", big)
    assert raw_rows(spool) == []
    assert not spool.accepted.is_set()


def test_the_probe_fails_on_a_read_only_spool_and_leaves_nothing(spool):
    spool.probe(outgoing("probe"))
    assert raw_rows(spool) == [] and spool.stats().queued == 0
    spool._connection().execute("PRAGMA query_only = ON")
    with pytest.raises(SpoolUnavailable):
        spool.probe(outgoing("probe"))
    with pytest.raises(SpoolUnavailable):
        spool.accept("sub", [outgoing("readonly")])


def test_accept_wakes_delivery(spool):
    assert not spool.accepted.is_set()
    spool.accept("sub", [outgoing("wake")])
    assert spool.accepted.is_set()


def test_a_claim_holds_a_bounded_number_of_bytes(spool):
    """Big messages come one batch of a few megabytes at a time, oldest first; one
    message above the bound still goes, alone."""
    megabyte = 1024 * 1024
    for number in range(3):
        spool.accept(f"sub-{number}", [outgoing("big", number, b"x" * megabyte)])
    first = spool.claim("worker", 60, 10, max_bytes=int(1.5 * megabyte))
    assert [opened(spool, entry).message_id for entry in first] == ["<big.0@forms.test>", "<big.1@forms.test>"]
    (alone,) = spool.claim("worker", 60, 10, max_bytes=1)
    mail = opened(spool, alone)
    assert mail.message_id == "<big.2@forms.test>" and len(mail.data) > megabyte


@pytest.mark.parametrize("size", [0, 57, 5 * 1024 * 1024 - 3])
def test_a_message_comes_out_of_the_spool_as_it_went_in(spool, size):
    mail = outgoing("whole", body=os.urandom(size) + b"\r\n")
    spool.accept("whole", [mail])
    (entry,) = spool.claim("worker", 60, 10)
    assert opened(spool, entry) == mail


def claim_all(spool: Spool, owner: str, found: list) -> None:
    """Claim small batches until nothing is due, recording (and delivering) each id."""
    while batch := spool.claim(owner, 60, 3):
        for entry in batch:
            found.append(entry.id)
            spool.delivered(entry.id)


def test_concurrent_threads_never_claim_the_same_row(spool_path, spool, sealer):
    for number in range(60):
        spool.accept(f"sub-{number}", [outgoing("thread", number), outgoing("thread-ack", number)])
    found: list[int] = []
    workers = [
        threading.Thread(target=claim_all, args=(Spool(spool_path, sealer), f"thread-{index}", found))
        for index in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(found) == 120
    assert len(set(found)) == 120
    assert raw_rows(spool) == []


def _claim_in_child(spool: Spool, owner: str, results) -> None:  # pragma: no cover - child process
    found: list[int] = []
    claim_all(Spool(spool.path, spool.sealer), owner, found)  # each worker opens its own, as under gunicorn
    results.put(found)


def test_concurrent_processes_never_claim_the_same_row(spool):
    for number in range(60):
        spool.accept(f"sub-{number}", [outgoing("process", number), outgoing("process-ack", number)])
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_claim_in_child, args=(spool, f"proc-{n}", results)) for n in range(4)]
    for child in children:
        child.start()
    found = [entry_id for _ in children for entry_id in results.get(timeout=30)]
    for child in children:
        child.join(10)
        assert child.exitcode == 0
    assert len(found) == 120
    assert len(set(found)) == 120
    assert raw_rows(spool) == []


def test_a_lease_keeps_others_off_until_it_expires(clocked_spool, clock):
    spool = clocked_spool
    spool.accept("sub", [outgoing("lease")])
    (first,) = spool.claim("worker-a", 30, 10)
    clock.advance(29.9)
    assert spool.claim("worker-b", 30, 10) == []
    clock.advance(0.1)  # worker-a crashed: its lease runs out
    (again,) = spool.claim("worker-b", 30, 10)
    assert again.id == first.id


def test_rows_split_off_a_claimed_message_stay_with_its_owner(spool):
    """Between the split and their scheduling, no other worker may send the parts (to
    recipients who just refused, or twice)."""
    spool.accept("sub", [outgoing("whole")])
    [claimed] = spool.claim("a", lease_seconds=60, limit=10)
    assert len(spool.split(claimed, [("one@example.org",), ("two@example.org",)])) == 2
    assert spool.claim("b", lease_seconds=60, limit=10) == []


def test_release_makes_rows_claimable_without_counting_an_attempt(spool):
    spool.accept("sub", [outgoing("release")])
    (entry,) = spool.claim("worker-a", 60, 10)
    spool.release([entry.id], "someone-else")
    assert spool.claim("worker-b", 60, 10) == []
    spool.release([entry.id], "worker-a")
    (again,) = spool.claim("worker-b", 60, 10)
    assert again.attempts == 0


@pytest.mark.parametrize(
    "attempts, low, high", [(1, 1, 2), (2, 2, 4), (3, 4, 8), (4, 8, 16), (5, 15, 30), (500, 15, 30)]
)
def test_backoff_grows_within_bounds_with_jitter(attempts, low, high):
    policy = RetryPolicy(base_seconds=1, max_seconds=30)
    delays = [policy.delay(attempts) for _ in range(300)]
    assert all(low <= delay <= high for delay in delays)
    assert len(set(delays)) > 250  # jittered, not one value


def test_retry_later_schedules_within_the_policy_and_records_only_the_code(spool_path, sealer):
    spool = Spool(spool_path, sealer, RetryPolicy(base_seconds=10, max_seconds=100))
    spool.accept("sub", [outgoing("retry")])
    (entry,) = spool.claim("worker", 60, 10)
    before = time.time()
    spool.retry_later(entry.id, "TemporaryRelayError: message refused: 451")
    ((_, _, state, attempts, next_attempt_at, last_error),) = raw_rows(spool)
    assert (state, attempts, last_error) == ("queued", 1, "TemporaryRelayError: message refused: 451")
    assert before + 10 <= next_attempt_at <= time.time() + 20
    assert spool.claim("worker", 60, 10) == []  # not due yet
    assert spool.make_due() == 1
    assert [again.attempts for again in spool.claim("worker", 60, 10)] == [1]


def test_the_last_delivery_error_keeps_when_it_first_came_until_a_delivery(clocked_spool, clock):
    clocked_spool.accept("sub", [outgoing("error", 1), outgoing("error", 2)])
    first, second = clocked_spool.claim("worker", 60, 10)
    clocked_spool.retry_later(first.id, "ActionRequired: authentication refused: 535", alert=True)
    clock.advance(60)
    clocked_spool.retry_later(second.id, "ActionRequired: authentication refused: 535", alert=True)
    came = DeliveryError(clock.now - 60, "ActionRequired: authentication refused: 535", True)
    assert clocked_spool.stats().delivery_error == came
    clocked_spool.retry_later(second.id, "TemporaryRelayError: cannot open SMTP session: timed out")
    came = DeliveryError(clock.now, "TemporaryRelayError: cannot open SMTP session: timed out", False)
    assert clocked_spool.stats().delivery_error == came
    clocked_spool.delivered(first.id)
    assert clocked_spool.stats().delivery_error is None


def test_too_old_goes_dead_and_stays(spool_path, sealer, clock, caplog):
    spool = Spool(spool_path, sealer, RetryPolicy(base_seconds=60, max_seconds=60, max_age_seconds=3600), clock=clock)
    spool.accept("sub-old", [outgoing("old")])
    (entry,) = spool.claim("worker", 60, 10)
    spool.retry_later(entry.id, "TemporaryRelayError: 421")
    clock.advance(3600)
    (entry,) = spool.claim("worker", 60, 10)
    spool.retry_later(entry.id, "TemporaryRelayError: 421")
    (dead,) = spool.list_dead()
    assert (dead.id, dead.submission_id, dead.attempts) == (entry.id, "sub-old", 2)
    assert dead.last_error == "expired after TemporaryRelayError: 421"
    assert spool.claim("worker", 60, 10) == []
    assert any(record.levelname == "ERROR" and "DEAD" in record.getMessage() for record in caplog.records)
    assert "old@example.org" not in caplog.text


def test_dead_entries_are_listed_and_requeued(spool):
    spool.accept("sub-a", [outgoing("dead", 1)])
    spool.accept("sub-b", [outgoing("dead", 2)])
    first, second = spool.claim("worker", 60, 10)
    spool.dead(first.id, "PermanentRelayError: message refused: 550")
    spool.dead(second.id, "PermanentRelayError: message refused: 554")
    assert [entry.id for entry in spool.list_dead()] == [first.id, second.id]
    assert spool.stats().dead == 2
    assert spool.requeue([second.id, 9999]) == 1
    (revived,) = spool.claim("worker", 60, 10)
    assert (revived.id, revived.attempts) == (second.id, 0)
    assert spool.requeue() == 1
    assert spool.stats().dead == 0


def test_stats_count_and_age_without_personal_data(clocked_spool, clock):
    spool = clocked_spool
    assert spool.stats().as_dict() == {"depth": 0, "dead": 0, "oldest_age_seconds": None}
    spool.accept("sub", [outgoing("stats", 1), outgoing("stats", 2)])
    clock.advance(42)
    stats = spool.stats()
    assert (stats.queued, stats.dead, stats.oldest_age_seconds) == (2, 0, 42)


def file_bytes(spool: Spool) -> bytes:
    """Everything SQLite keeps on disk for the spool: main file, WAL and shared memory."""
    return b"".join(path.read_bytes() for path in spool.path.parent.glob(spool.path.name + "*"))


def test_raw_spool_files_hold_no_plaintext(spool):
    resume = b"%PDF-1.7 resume-bytes " + os.urandom(30_000) + b" end-of-resume"
    mail = outgoing("Sentinel-Zebra-4417", body=b"Reply-To: alice.distress@example.org\r\n" + resume)
    spool.accept("sub", [mail])
    spool.claim("worker", 60, 10)
    raw = file_bytes(spool)
    assert len(raw) > len(resume)
    for secret in (b"Sentinel-Zebra-4417", b"alice.distress@example.org", resume[20:60], b"end-of-resume"):
        assert secret not in raw


def test_a_row_no_key_opens_is_not_read(spool_path, spool):
    spool.accept("sub", [outgoing("lost-key")])
    stranger = Spool(spool_path, Sealer([Fernet.generate_key()]))
    (entry,) = stranger.claim("worker", 60, 10)
    with pytest.raises(InvalidToken):
        stranger.message(entry)


def test_seconds_until_due_follows_retries_and_leases(clocked_spool):
    """On the test's clock: with real time, a loaded machine let the short retry fall due before it was asked."""
    spool = clocked_spool
    assert spool.seconds_until_due() == float("inf")
    spool.accept("sub", [outgoing("due")])
    assert spool.seconds_until_due() == 0
    (entry,) = spool.claim("worker", 30, 10)
    assert 29 < spool.seconds_until_due() <= 30  # leased: not before the lease ends
    spool.retry_later(entry.id, "TemporaryRelayError: 451")
    assert 0 < spool.seconds_until_due() <= FAST_RETRY.max_seconds


def test_retry_settings_and_defaults(tmp_path):
    settings = {"DATA_DIR": str(tmp_path), "SPOOL_KEY": Fernet.generate_key().decode()}
    defaults = [DEFAULTS[name] for name in ("RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS", "MAX_AGE_SECONDS")]
    assert spool_from_config(settings).policy == RetryPolicy(*defaults)
    given = {**settings, "RETRY_BASE_SECONDS": 1, "RETRY_MAX_SECONDS": 2.5}
    assert spool_from_config(given).policy.max_seconds == 2.5


def test_unusable_data_dir_stops_start_up(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="^forms_service: FORMS_DATA_DIR "):
        spool_from_config({"DATA_DIR": str(blocker / "data"), "SPOOL_KEY": Fernet.generate_key().decode()})


def acknowledgement(marker: str, number: int = 2):
    """An email of the acknowledgement kind (outgoing() makes association copies)."""
    return dataclasses.replace(outgoing(marker, number), kind=ACKNOWLEDGEMENT)


def test_each_row_keeps_its_kind_through_claims_splits_and_death(spool):
    spool.accept("sub", [outgoing("kind", 1), acknowledgement("kind")])
    association, receipt = spool.claim("worker", 60, 10)
    assert (association.kind, receipt.kind) == (ASSOCIATION, ACKNOWLEDGEMENT)
    (part,) = spool.split(association, [("kind@example.org",)])
    spool.dead(part, "PermanentRelayError: recipients refused: 550")
    spool.dead(receipt.id, "expired after TemporaryRelayError: 451")
    assert {(entry.id, entry.kind) for entry in spool.list_dead()} == {
        (part, ASSOCIATION),
        (receipt.id, ACKNOWLEDGEMENT),
    }
    assert spool.dead_copies() == 1


def test_discard_removes_only_a_dead_row(spool):
    spool.accept("sub", [outgoing("discard", 1), outgoing("discard", 2)])
    first, second = spool.claim("worker", 60, 10)
    spool.dead(first.id, "PermanentRelayError: message refused: 550")
    assert spool.discard(second.id) is False  # queued: never discarded
    assert spool.discard(first.id) is True
    assert spool.discard(first.id) is False
    assert (spool.stats().queued, spool.stats().dead) == (1, 0)


def test_reseal_skips_rows_no_key_opens_and_reports_them(spool_path, sealer, caplog):
    spool = Spool(spool_path, sealer)
    spool.accept("sub-a", [outgoing("reseal", 1)])
    Spool(spool_path, Sealer([Fernet.generate_key()])).accept("sub-foreign", [outgoing("foreign")])
    spool.accept("sub-b", [outgoing("reseal", 2)])
    done, unreadable = spool.reseal()
    assert done == 2
    assert [entry.id for entry in spool.list_dead()] == unreadable
    assert [entry.submission_id for entry in spool.list_dead()] == ["sub-foreign"]


def test_two_threads_waiting_for_the_write_lock_each_give_up_within_one_busy_timeout(spool_path, sealer):
    """Another process holds the write lock; the delivery thread and a submission of one worker both want it.
    The one that waits for the other thread first shares that thread's busy timeout rather than starting
    a full one of its own: two in a row would reach gunicorn's worker timeout, and the person gets nothing."""
    busy_ms = 2000
    spool = Spool(spool_path, sealer, busy_timeout_ms=busy_ms)
    holder = sqlite3.connect(spool_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    given_up: list[float] = []
    started = time.monotonic()

    def accept(number: int) -> None:
        with pytest.raises(SpoolUnavailable):
            spool.accept(f"sub-{number}", [outgoing("locked", number)])
        given_up.append(time.monotonic() - started)

    threads = [threading.Thread(target=accept, args=(number,)) for number in (1, 2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(3 * busy_ms / 1000)
    finally:
        holder.rollback()
        holder.close()
    print(f"\ngave up after {[round(seconds, 2) for seconds in sorted(given_up)]} s (busy timeout {busy_ms} ms)")
    assert len(given_up) == 2
    assert max(given_up) < 1.75 * busy_ms / 1000  # one busy timeout and slack; two in a row took 4 s


@pytest.mark.parametrize("start_wait_ms, opens", [(None, True), (100, False)])
def test_a_starting_worker_waits_for_another_process_holding_the_file(spool_path, sealer, start_wait_ms, opens):
    """Three workers starting at once on a busy machine, or one rewriting an older spool file once: the
    others wait for its write lock, well past the ordinary busy timeout, rather than stop with exit
    status 4, which systemd does not restart. The control shows the wait is what lets it open."""
    spool_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    holder = sqlite3.connect(spool_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.0, holder.rollback)
    release.start()
    started = time.monotonic()
    try:
        options = {} if start_wait_ms is None else {"start_wait_ms": start_wait_ms}
        if opens:
            Spool(spool_path, sealer, busy_timeout_ms=100, **options)
            assert time.monotonic() - started >= 0.9  # it waited for the lock
        else:
            with pytest.raises(SpoolUnavailable):
                Spool(spool_path, sealer, busy_timeout_ms=100, **options)
    finally:
        release.join()
        holder.close()

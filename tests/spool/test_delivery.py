"""Background delivery against a real aiosmtpd server: retries, dead letters, crashes."""

from __future__ import annotations

import dataclasses
import email.policy
import logging
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from email.message import EmailMessage
from functools import partial

import pytest

from forms_service.delivery import Deliverer, init_delivery, start_delivery
from forms_service.outgoing import ACKNOWLEDGEMENT, ASSOCIATION
from forms_service.relay import Relay
from forms_service.spool import Spool
from harness.settings import JSON, support_form
from harness.smtp_sink import DROP, SmtpSink
from tests import forensics
from tests.service.helpers import post, refuse_recipients, wait_until
from tests.spool.conftest import FAST_RETRY, outgoing


def make_deliverer(app, spool: Spool, **options) -> Deliverer:
    """A Deliverer through the real relay; it must wake on accepts and due retries, not by polling."""
    return Deliverer(spool, partial(Relay, app), **{"lease_seconds": 10, "poll_seconds": 60, **options})


def accept(spool: Spool, count: int, marker: str = "mail") -> list[str]:
    """Accept `count` one-email submissions; returns their Message-IDs."""
    mails = [outgoing(marker, number) for number in range(count)]
    for number, mail in enumerate(mails):
        spool.accept(f"sub-{marker}-{number}", [mail])
    return [mail.message_id for mail in mails]


def received_ids(sink: SmtpSink) -> Counter:
    return Counter(message.parsed()["Message-ID"] for message in sink.messages)


def test_delivered_rows_are_erased_from_the_files(app, spool, spool_key, smtp_server):
    """After a delivery pass, with no checkpoint by hand, the folder yields nothing of the
    delivered messages to a reader who holds the key (tests/forensics.py), though it held
    them while they were queued and leased."""
    accept(spool, 3, "erase")
    spool.claim("lease-then-crash", 0.001, 10)  # a leased copy of each row, as a crashed worker leaves
    queued = forensics.examine(spool.path.parent, [spool_key])
    assert all(queued.mentions(f"<erase.{number}@forms.test>".encode()) for number in range(3))
    assert make_deliverer(app, spool).deliver_all() == 3
    erased = forensics.examine(spool.path.parent, [spool_key])
    assert erased.images >= 1 and erased.nothing()


@pytest.fixture
def running(app, spool):
    """A started delivery thread, stopped after the test."""
    deliverer = make_deliverer(app, spool)
    deliverer.start()
    yield deliverer
    deliverer.stop()


def test_delivers_exact_bytes_and_forgets(app, spool, smtp_server):
    spool.accept("sub-1", [outgoing("exact", 1), outgoing("exact", 2)])
    assert make_deliverer(app, spool).deliver_all() == 2
    first, second = smtp_server.messages
    assert (first.data, first.rcpt_tos, first.mail_from) == (
        outgoing("exact", 1).data,
        ("exact@example.org",),
        "forms@association.test",
    )
    assert second.data == outgoing("exact", 2).data and second.tls and second.authenticated
    assert spool.stats().queued == 0


@pytest.mark.parametrize(
    "replies",
    [
        ["451 4.3.0 Try again later"],
        ["421 4.3.0 Service not available"],
        [DROP],
        ["451 4.3.0 Greylisted", DROP, "452 4.3.1 Insufficient storage"],
    ],
)
def test_temporary_failures_are_retried_until_delivered(running, spool, smtp_server, replies):
    smtp_server.handler.script.extend(replies)
    (message_id,) = accept(spool, 1)
    assert wait_until(lambda: smtp_server.messages)
    assert received_ids(smtp_server) == {message_id: 1}
    assert wait_until(lambda: spool.stats().queued == 0)
    assert spool.stats().dead == 0


def test_permanent_refusal_goes_dead_and_is_not_retried(app, spool, smtp_server, caplog):
    smtp_server.handler.script.append("550 5.7.1 <refused@example.org> Message refused")
    accept(spool, 1, "refused")
    deliverer = make_deliverer(app, spool)
    deliverer.deliver_all()
    (dead,) = spool.list_dead()
    assert dead.last_error == "PermanentRelayError: message refused: 550"
    assert deliverer.deliver_all() == 0
    assert smtp_server.messages == []
    assert "DEAD spool entry" in caplog.text
    assert "refused@example.org" not in caplog.text


def test_a_refused_login_ends_the_pass_after_one_attempt_and_keeps_every_message(make_app, spool, monkeypatch):
    """The same for every message: trying each would repeat it (a provider may lock the account after a few
    failed logins). Every message is kept and retried, none goes dead, however long it lasts."""
    from forms_service import relay as relay_module

    logins = []
    login = relay_module.smtplib.SMTP.login
    monkeypatch.setattr(relay_module.smtplib.SMTP, "login", lambda *args: logins.append(1) or login(*args))
    deliverer = make_deliverer(make_app(MAIL_PASSWORD="wrong"), spool)
    accept(spool, 3, "kept")
    assert deliverer.deliver_due() == 3 and len(logins) == 1
    assert failed_attempts(spool) == 3 and spool.stats().delivery_error.alert
    spool.policy = dataclasses.replace(spool.policy, max_age_seconds=0)  # past FORMS_MAX_AGE_SECONDS
    spool.make_due()
    deliverer.deliver_all()
    assert (spool.stats().queued, spool.stats().dead) == (3, 0)


def test_smtp_down_while_submissions_arrive(make_app, spool, smtp_ca):
    """All accepted while the server is down; all delivered once it is up, unattended."""
    sink = SmtpSink(smtp_ca)  # not started yet: connections are refused
    deliverer = make_deliverer(make_app(**sink.mail_config()), spool)
    deliverer.start()
    try:
        message_ids = accept(spool, 5, "outage")
        assert wait_until(lambda: failed_attempts(spool) >= 10)  # each tried at least twice
        assert (spool.stats().queued, spool.stats().dead) == (5, 0)
        sink.start()
        assert wait_until(lambda: spool.stats().queued == 0)
        assert received_ids(sink) == Counter(message_ids)
    finally:
        deliverer.stop()
        sink.stop()


def failed_attempts(spool: Spool) -> int:
    with sqlite3.connect(spool.path) as db:
        return db.execute("SELECT total(attempts) FROM schedule").fetchone()[0]


def test_a_slow_server_is_a_temporary_failure(make_app, spool, smtp_server):
    """A reply slower than FORMS_MAIL_TIMEOUT is retried; the server may then hold two
    copies, recognisable by their identical Message-ID."""
    smtp_server.handler.delay = 1.5
    deliverer = make_deliverer(make_app(MAIL_TIMEOUT=1), spool)
    (message_id,) = accept(spool, 1, "slow")
    deliverer.deliver_all()
    assert spool.stats().queued == 1
    smtp_server.handler.delay = 0
    spool.make_due()
    deliverer.deliver_all()
    assert spool.stats().queued == 0
    assert set(received_ids(smtp_server)) == {message_id}


def test_wakes_at_once_when_a_submission_is_accepted(app, spool, smtp_server, monkeypatch):
    passed = threading.Event()  # the first pass found nothing; then it sleeps up to 60 s
    monkeypatch.setattr(spool, "seconds_until_due", lambda real=spool.seconds_until_due: passed.set() or real())
    deliverer = make_deliverer(app, spool)
    deliverer.start()
    try:
        assert passed.wait(10)
        accept(spool, 1, "wake")
        # Well under the 60 s poll, with room for a loaded machine: only a wake-up delivers in time.
        assert smtp_server.handler.wait_for(1, timeout=20)
    finally:
        deliverer.stop()


def test_stop_ends_the_thread(app, spool):
    deliverer = make_deliverer(app, spool)
    deliverer.start()
    started = time.monotonic()
    deliverer.stop(timeout=30)
    assert not deliverer._thread.is_alive()
    assert time.monotonic() - started < 10  # woken, not left to its 60 s poll


def test_survives_a_failing_pass(app, spool, smtp_server, monkeypatch, caplog):
    """A pass that fails (here: the spool is locked) is logged by class and retried at the next poll."""
    real_claim, failures = spool.claim, []

    def flaky_claim(*args):
        if not failures:
            failures.append(1)
            raise sqlite3.OperationalError("database is locked")
        return real_claim(*args)

    monkeypatch.setattr(spool, "claim", flaky_claim)
    (message_id,) = accept(spool, 1, "flaky")
    deliverer = make_deliverer(app, spool, poll_seconds=0.2)
    with caplog.at_level(logging.ERROR, logger="forms_service.delivery"):
        deliverer.start()
        try:
            assert smtp_server.handler.wait_for(1, timeout=5)
        finally:
            deliverer.stop()
    assert failures and received_ids(smtp_server) == {message_id: 1}
    assert "delivery pass failed: OperationalError" in caplog.text


def test_releases_what_it_cannot_send_within_half_the_lease(app, spool, smtp_server):
    smtp_server.handler.delay = 0.3
    accept(spool, 3, "lease")
    assert make_deliverer(app, spool, lease_seconds=0.5).deliver_due() == 3
    assert len(smtp_server.messages) == 1
    others = spool.claim("another-worker", 10, 10)  # released at once, not after the lease
    assert [entry.attempts for entry in others] == [0, 0]


def test_several_workers_send_each_message_once(app, spool_path, sealer, spool, smtp_server):
    message_ids = accept(spool, 30, "shared")
    workers = [make_deliverer(app, Spool(spool_path, sealer)) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        assert smtp_server.handler.wait_for(30, timeout=15)
    finally:
        for worker in workers:
            worker.stop()  # a send in progress ends first: a duplicate would be counted below
    assert received_ids(smtp_server) == Counter(message_ids)


def test_sigkill_mid_relay_loses_nothing(app, clocked_spool, clock, smtp_server):
    """A worker killed while the server is receiving: after its lease, another
    delivers everything; only the message caught mid-relay may arrive twice."""
    spool = clocked_spool
    message_ids = accept(spool, 4, "killed")
    smtp_server.handler.delay = 0.6
    child = os.fork()
    if child == 0:  # pragma: no cover - the doomed worker, with a spool of its own as under gunicorn
        make_deliverer(app, Spool(spool.path, spool.sealer, clock=clock), lease_seconds=1).deliver_all()
        os._exit(0)
    assert smtp_server.handler.data_started.wait(10)  # the child is inside its first DATA
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    smtp_server.handler.wait_for(1)  # the server ends that transaction all the same: a duplicate
    smtp_server.handler.delay = 0
    clock.advance(1.0)  # the dead worker's lease runs out
    make_deliverer(app, spool).deliver_all()
    counts = received_ids(smtp_server)
    assert set(counts) == set(message_ids)
    assert sum(counts.values()) - len(message_ids) <= 1
    assert spool.stats().queued == 0


def test_wiring_into_the_app(make_app, spool):
    app = make_app(SPOOL_LEASE_SECONDS=7)
    deliverer = init_delivery(app, spool)
    assert (app.extensions["forms_spool"], app.extensions["forms_deliverer"]) == (spool, deliverer)
    assert deliverer.lease_seconds == 7
    assert init_delivery(make_app(MAIL_TIMEOUT=3), spool).lease_seconds == 30
    assert start_delivery(app) is deliverer and deliverer._thread.is_alive()
    deliverer.stop()


def test_partly_refused_message_is_retried_only_for_the_refused(app, clocked_spool, clock, smtp_server, monkeypatch):
    """Accepted recipients get exactly one copy; a 4xx recipient is retried alone (same
    Message-ID); a 5xx recipient is dead alone and an operator can see it. On the test's clock: with
    real time, a slow machine let the retry fall due within the same pass."""
    spool = clocked_spool
    team = ("a@example.org", "b@example.org", "c@example.org")
    refuse_recipients(
        monkeypatch, smtp_server, {team[1]: ["450 4.2.1 Busy", "451 4.3.0 Later"], team[2]: ["550 5.1.1 No such user"]}
    )
    mail = dataclasses.replace(outgoing("split"), recipients=team)
    spool.accept("sub-split", [mail])
    deliverer = make_deliverer(app, spool)
    deliverer.deliver_all()
    (dead,) = spool.list_dead()
    assert (dead.submission_id, dead.last_error) == ("sub-split", "RecipientsRefused: recipients refused: 450, 550")
    for _ in range(2):  # the second try is refused again, the third goes through
        assert 0 < spool.seconds_until_due() <= FAST_RETRY.max_seconds
        clock.advance(spool.seconds_until_due())
        deliverer.deliver_all()
    assert [message.rcpt_tos for message in smtp_server.messages] == [(team[0],), (team[1],)]
    assert received_ids(smtp_server) == {mail.message_id: 2}
    assert (spool.stats().queued, spool.stats().dead) == (0, 1)


def test_a_refused_acknowledgement_is_logged_and_dropped(app, spool, smtp_server, caplog):
    """A 550 for the submitter's receipt (a mistyped address): nothing the association needs,
    so no dead row that would keep monitoring red forever."""
    smtp_server.handler.script.append("550 5.1.1 <mistyped@example.org> User unknown")
    spool.accept("sub-ack", [dataclasses.replace(outgoing("receipt"), kind=ACKNOWLEDGEMENT)])
    make_deliverer(app, spool).deliver_all()
    assert (spool.stats().queued, spool.stats().dead, spool.list_dead()) == (0, 0, [])
    assert (
        "dropped acknowledgement spool entry 1 (submission sub-ack): PermanentRelayError: message refused: 550"
        in caplog.text
    )
    assert "mistyped" not in caplog.text and "DEAD" not in caplog.text


def test_the_association_copy_refused_stays_dead_with_its_kind(app, spool, smtp_server, caplog):
    smtp_server.handler.script.append("550 5.7.1 Message refused")
    spool.accept("sub-copy", [outgoing("copy")])
    make_deliverer(app, spool).deliver_all()
    (dead,) = spool.list_dead()
    assert (dead.submission_id, dead.kind) == ("sub-copy", ASSOCIATION)
    assert (
        "kept: once the cause is fixed, `flask --app forms_service spool requeue 1`, or to give it up, "
        "`flask --app forms_service spool discard 1`"
    ) in caplog.text


def test_a_posted_request_refused_for_the_submitter_and_an_urgent_reader(app, smtp_server, monkeypatch):
    """Through the real composition: the acknowledgement refused (5xx at RCPT) is dropped; the
    urgent copy is part of the association's mail, so its refused reader stays dead."""
    refuse_recipients(
        monkeypatch,
        smtp_server,
        {"aidworker@example.org": ["550 5.1.1 No such user"], "urgent@cch.example.org": ["550 5.2.1 Mailbox disabled"]},
    )
    client = app.test_client()
    assert post(client, "support", support_form(urgent="yes"), JSON).status_code == 202
    spool = app.extensions["forms_spool"]
    (dead,) = spool.list_dead()
    assert (dead.kind, dead.last_error) == (ASSOCIATION, "RecipientsRefused: recipients refused: 550")
    assert [message.rcpt_tos for message in smtp_server.messages] == [("support@cch.example.org",)]
    assert spool.stats().queued == 0


def test_a_5_mb_application_arrives_as_composed(app, spool, smtp_server):
    resume = os.urandom(5 * 1024 * 1024)
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = "application"
    message.set_content("Bonjour")
    message.add_attachment(resume, "application", "pdf", filename="cv.pdf")
    mail = dataclasses.replace(outgoing("big"), data=message.as_bytes())
    spool.accept("big", [mail])
    assert make_deliverer(app, spool).deliver_all() == 1
    (received,) = smtp_server.messages
    assert received.data == mail.data and received.parsed().get_payload()[1].get_content() == resume
    assert spool.stats().queued == 0


def test_lines_starting_with_a_dot_arrive_as_spooled(app, spool, smtp_server):
    body = b"".join(b"." + b"x" * (number % 97) + b"\r\n" for number in range(8000)) + b".\r\n..\r\n.\r\n"
    spool.accept("dots", [outgoing("dots", body=body)])
    assert make_deliverer(app, spool).deliver_all() == 1
    assert [received.data for received in smtp_server.messages] == [outgoing("dots", body=body).data]


def test_a_row_gone_when_it_is_read_is_left_alone(app, spool, smtp_server, monkeypatch, caplog):
    """Delivered meanwhile by a worker whose lease overlapped ours: nothing is sent, retried or counted."""
    accept(spool, 1, "gone")
    real_claim = spool.claim

    def claim_then_lose(*args):
        batch = real_claim(*args)
        for entry in batch:
            Spool(spool.path, spool.sealer).delivered(entry.id)
        return batch

    monkeypatch.setattr(spool, "claim", claim_then_lose)
    with caplog.at_level(logging.INFO, logger="forms_service.delivery"):
        assert make_deliverer(app, spool).deliver_all() == 1
    assert smtp_server.messages == [] and "is gone: delivered by an overlapping lease" in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_an_altered_row_goes_dead_and_nothing_of_it_is_sent(app, spool, smtp_server):
    """The whole row is authenticated before a byte of it reaches the server."""
    accept(spool, 1, "tampered")
    with sqlite3.connect(spool.path) as db, db.blobopen("outgoing", "sealed", 1) as blob:
        blob.seek(len(blob) // 2)
        character = blob.read(1)
        blob.seek(len(blob) // 2)
        blob.write(b"B" if character == b"A" else b"A")  # another base64 character: one ciphertext byte
    db.close()
    make_deliverer(app, spool).deliver_all()
    assert smtp_server.messages == [] and not smtp_server.handler.data_started.is_set()
    assert [entry.last_error for entry in spool.list_dead()] == ["InvalidToken"]

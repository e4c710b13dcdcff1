"""Issue 12: nothing of a delivered message can be recovered from the data folder, by someone
who also holds the spool key, 10 s after its delivery: while the service runs, after it
stopped, after a SIGKILL, and while other submissions keep coming.

The service runs under `gunicorn forms_service.wsgi:app` with the documented workers; each
check copies the data folder as a thief would and reads it with tests/forensics.py (every
committed WAL generation, free pages, pieces of tokens).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from contextlib import contextmanager

import pytest

from harness.gunicorn import Gunicorn
from harness.settings import OPERATOR
from tests.faults.rig import MAILS_PER_SUBMISSION, Rig, kill_server
from tests.faults.scenarios import post_until
from tests.forensics import Recovered
from tests.service.helpers import wait_until

ERASE_DEADLINE = 10.0  # seconds after delivery (README.md, "Spool and delivery")
SUBMISSIONS = 20
STALL = 12.0  # longer than the deadline, shorter than the FORMS_MAIL_TIMEOUT the test sets
# Seconds between a client's posts under load: light enough that SQLite's own WAL recycling
# cannot pass for erasure, and heavy (with a spool the reader still reads in time).
PACES = {"light": 2.0, "heavy": 0.05}


@pytest.fixture
def rig(tmp_path) -> Rig:
    return Rig(tmp_path)


def depth(server: Gunicorn) -> int:
    """Messages waiting, as monitoring reads it (healthz with the operator's token)."""
    return json.loads(server.get("/forms/healthz", headers=OPERATOR)[1])["spool"]["depth"]


def delivered_and_idle(rig: Rig, server: Gunicorn) -> float:
    """Submit SUBMISSIONS support requests, wait until the spool is empty; the monotonic
    time by which the copy must hold nothing."""
    rig.submit(server.port, SUBMISSIONS)
    assert len(rig.submissions.accepted) == SUBMISSIONS
    assert wait_until(lambda: depth(server) == 0, 30), server.output()[-4000:]
    return time.monotonic() + ERASE_DEADLINE


def stolen_until(rig: Rig, deadline: float, clean) -> tuple[Recovered, float]:
    """Copy and read the folder until a copy taken by the deadline is `clean`; the last
    reading and how many seconds before the deadline its copy was taken (negative: none was
    clean in time; polling stops at the first copy taken after the deadline)."""
    while True:
        left = deadline - time.monotonic()
        recovered = rig.stolen()
        if clean(recovered) or left <= 0:
            return recovered, left
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def test_a_running_service_leaves_nothing_readable(rig):
    rig.sink.start()
    try:
        with rig.serve() as server:
            deadline = delivered_and_idle(rig, server)
            recovered, left = stolen_until(rig, deadline, Recovered.nothing)
            print(f"\nerasure (running): verdict on a copy taken {ERASE_DEADLINE - left:.1f} s after depth 0")
            assert recovered.images >= 1
            assert left >= 0 and recovered.nothing(), recovered.summary()
            assert rig.stolen().nothing()  # and it stays so
    finally:
        rig.sink.stop()
    assert rig.figures("erasure").delivered == SUBMISSIONS


def test_a_stopped_service_leaves_nothing_readable(rig):
    """SIGTERM as soon as everything is delivered: the workers erase before they exit."""
    rig.sink.start()
    try:
        with rig.serve() as server:
            delivered_and_idle(rig, server)
            server.stop()
            assert server.process.returncode == 0, server.output()[-4000:]
            recovered = rig.stolen()
    finally:
        rig.sink.stop()
    assert recovered.images >= 1
    assert recovered.nothing(), recovered.summary()


def test_a_killed_service_leaves_nothing_readable(rig):
    """SIGKILL (no restart) once the deadline after delivery is reached: the erasure happened
    while the service ran; nothing an unclean end leaves behind brings it back."""
    rig.sink.start()
    try:
        with rig.serve() as server:
            deadline = delivered_and_idle(rig, server)
            before, left = stolen_until(rig, deadline, Recovered.nothing)
            kill_server(server)
            after = rig.stolen()
    finally:
        rig.sink.stop()
    assert left >= 0 and before.nothing(), before.summary()
    assert after.images >= 1
    assert after.nothing(), after.summary()


@pytest.mark.parametrize("pace", PACES.values(), ids=PACES.keys())
def test_delivered_messages_are_unreadable_under_steady_load(rig, pace):
    """Two clients keep posting all along; the marked submissions, once delivered, are
    unreadable by the deadline even though the spool never stops being written."""
    rig.sink.start()
    stop = threading.Event()
    try:
        with rig.serve() as server:
            clients = [
                threading.Thread(target=post_until, args=(rig, server.port, stop, False, pace)) for _ in range(2)
            ]
            for client in clients:
                client.start()
            assert wait_until(lambda: len(rig.submissions.accepted) >= 4, 15)
            before = len(rig.submissions.accepted)
            marked = [rig.post(server.port).json()["id"] for _ in range(10)]
            emails = [
                f"<{submission}.{number}@site.test>"
                for submission in marked
                for number in range(1, MAILS_PER_SUBMISSION + 1)
            ]
            assert wait_until(lambda: all(email in rig.received() for email in emails), 30)
            deadline = time.monotonic() + ERASE_DEADLINE
            started = time.monotonic()
            recovered, left = stolen_until(
                rig, deadline, lambda found: not any(found.mentions(id.encode()) for id in marked)
            )
            print(
                f"\nerasure (under load): verdict on a copy taken {ERASE_DEADLINE - left:.1f} s after delivery,"
                f" read in {time.monotonic() - started:.1f} s; {len(recovered.messages)} queued messages in it"
            )
            # the clients posted between the marked ones and kept posting after the verdict
            flowing = wait_until(lambda: len(rig.submissions.accepted) > before + len(marked) + len(clients), 15)
            stop.set()
            for client in clients:
                client.join(30)
    finally:
        stop.set()
        rig.sink.stop()
    assert left >= 0 and [id for id in marked if recovered.mentions(id.encode())] == []
    assert flowing


@contextmanager
def stalling_after(sink, answered: int, seconds: float):
    """The SMTP server answers the first `answered` DATA commands at once, then waits `seconds` before each."""
    handler, calls = sink.handler, itertools.count(1)
    original = handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        if next(calls) > answered:
            await asyncio.sleep(seconds)
        return await original(server, session, envelope)

    handler.handle_DATA = handle_DATA
    try:
        yield
    finally:
        del handler.handle_DATA


def test_a_send_that_hangs_does_not_hold_up_the_erasure(rig):
    """The association's email is delivered, then the server takes 12 s over the acknowledgement
    (within FORMS_MAIL_TIMEOUT): the delivered one is unreadable by its deadline all the same."""
    rig.settings["MAIL_TIMEOUT"] = STALL + 8
    rig.sink.start()
    try:
        with stalling_after(rig.sink, 1, STALL), rig.serve() as server:
            submission = rig.post(server.port).json()["id"]
            delivered, hanging = (f"<{submission}.{number}@site.test>".encode() for number in (1, 2))
            assert wait_until(lambda: delivered.decode() in rig.received(), 15)
            deadline = time.monotonic() + ERASE_DEADLINE
            recovered, left = stolen_until(rig, deadline, lambda found: not found.mentions(delivered))
            still_hanging = hanging.decode() not in rig.received()
    finally:
        rig.sink.stop()
    assert still_hanging  # the check ran while the second send hung
    assert left >= 0 and not recovered.mentions(delivered)

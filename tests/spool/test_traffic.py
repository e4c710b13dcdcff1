"""Delivery gives way to requests: it sends in the gaps between them, and still drains under load.

Times here are lower bounds or generous upper bounds (a pacing that does not
wait would send within milliseconds), so a slow machine cannot fail them.
"""

from __future__ import annotations

import threading
import time

import pytest

from forms_service import extensions
from forms_service.delivery import start_delivery
from forms_service.traffic import Traffic
from tests.service.helpers import wait_until
from tests.spool.test_delivery import accept, make_deliverer


def waiting_app(go: threading.Event):
    """A WSGI app whose every request lasts until `go` is set."""

    def app(environ, start_response):
        go.wait(30)
        start_response("200 OK", [])
        return [b""]

    return app


class WatchedTraffic(Traffic):
    """Traffic that says when someone (delivery) has begun to wait for a gap."""

    def __init__(self, **options):
        super().__init__(**options)
        self.waiting = threading.Event()

    def wait_for_gap(self) -> float:
        self.waiting.set()
        return super().wait_for_gap()


class HeldRequest:
    """`send()` in its own thread, a request that lasts until `release()` sets `go`
    (whatever serves it waits for that event); started once `traffic` counts it."""

    def __init__(self, traffic: Traffic, go: threading.Event, send):
        self.go = go
        self._thread = threading.Thread(target=send)
        self._thread.start()
        assert wait_until(lambda: traffic.active == 1)

    @classmethod
    def bare(cls, traffic: Traffic) -> HeldRequest:
        """Held in `traffic`'s middleware around a bare WSGI app."""
        go = threading.Event()
        return cls(traffic, go, lambda: traffic.middleware(waiting_app(go))({}, lambda *args: None))

    def release(self) -> None:
        self.go.set()
        self._thread.join(30)


def test_without_requests_delivery_does_not_wait():
    assert Traffic(quiet_seconds=5, patience_seconds=5).wait_for_gap() < 5


def test_a_request_in_progress_holds_delivery_for_its_patience_at_most():
    traffic = Traffic(quiet_seconds=0.05, patience_seconds=0.4)
    held = HeldRequest.bare(traffic)
    try:
        waited = traffic.wait_for_gap()
    finally:
        held.release()
    assert 0.4 <= waited < 30  # gave way, then went anyway: the spool drains under sustained load


def test_delivery_goes_once_requests_have_been_quiet():
    traffic = WatchedTraffic(quiet_seconds=0.3, patience_seconds=60)
    held = HeldRequest.bare(traffic)
    waited: list[float] = []
    waiter = threading.Thread(target=lambda: waited.append(traffic.wait_for_gap()))
    waiter.start()
    assert traffic.waiting.wait(10)
    ended = time.monotonic()
    held.release()
    waiter.join(60)
    assert waited and waited[0] < 60
    assert time.monotonic() - ended >= 0.3  # not at the end of the request: after a quiet spell
    assert traffic.active == 0


def test_a_request_that_fails_still_ends():
    traffic = Traffic()

    def failing(environ, start_response):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        traffic.middleware(failing)({}, lambda *args: None)
    assert traffic.active == 0


def test_the_service_holds_its_deliveries_while_it_answers(make_app, spool, smtp_server):
    """Wired by start_delivery: a request in progress in the app keeps an accepted message
    in the spool; once requests stop, it goes without anyone asking."""
    app = make_app()
    deliverer = app.extensions[extensions.DELIVERER] = make_deliverer(
        app, spool, traffic=WatchedTraffic(quiet_seconds=0.05, patience_seconds=60)
    )
    go = threading.Event()
    app.add_url_rule("/slow", "slow", lambda: str(go.wait(30)))
    start_delivery(app)
    try:
        held = HeldRequest(deliverer.traffic, go, lambda: app.test_client().get("/slow"))
        (message_id,) = accept(spool, 1, "held")
        assert deliverer.traffic.waiting.wait(10)  # it has claimed the message, and gives way
        assert not smtp_server.messages and spool.stats().queued == 1
        held.release()
        assert wait_until(lambda: smtp_server.messages)
        assert smtp_server.messages[0].parsed()["Message-ID"] == message_id
    finally:
        deliverer.stop()

"""The public health answer is proved at most every few seconds per process (its probe costs a
gpg run, a write and an fsync); the operator's is always proved afresh, and a failed submission
turns the public answer red at once. Under a real flood of healthz: tests/deploy/test_floods.py."""

from __future__ import annotations

import time

import pytest

from forms_service import extensions, health
from harness.settings import JSON, OPERATOR, SITE, support_form


@pytest.fixture
def probes(monkeypatch) -> list[float]:
    """When each probe ran: the real probe, counted."""
    ran = []
    real = health.probe

    def counted(*args):
        ran.append(time.monotonic())
        return real(*args)

    monkeypatch.setattr(health, "probe", counted)
    return ran


def test_a_flood_of_public_calls_probes_once(client, probes):
    assert {client.get("/forms/healthz").status_code for _ in range(50)} == {200}
    assert len(probes) == 1
    assert client.get("/forms/healthz", headers=OPERATOR).status_code == 200
    assert client.get("/forms/healthz", headers=OPERATOR).status_code == 200
    assert len(probes) == 3  # the operator's answer is proved each time


def test_the_public_answer_is_proved_again_once_it_is_old(app, probes):
    public, now = extensions.public_health(app), [0.0]
    public.clock = lambda: now[0]
    client = app.test_client()
    client.get("/forms/healthz")
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = ON")  # the spool refuses writes
    now[0] += public.every - 0.01
    assert client.get("/forms/healthz").status_code == 200  # still the answer proved a moment ago
    now[0] += 0.01
    assert client.get("/forms/healthz").status_code == 503
    assert len(probes) == 2
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = OFF")
    now[0] += public.every
    assert client.get("/forms/healthz").status_code == 200


def test_a_failed_submission_turns_the_public_answer_red_at_once(app, probes):
    client = app.test_client()
    assert client.get("/forms/healthz").status_code == 200
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = ON")
    failed = client.post("/forms/support", data=support_form(), headers={**SITE, **JSON})
    assert failed.status_code == 503
    assert client.get("/forms/healthz").status_code == 503
    assert len(probes) == 1  # red from the failure itself, not from a new probe
    operator = client.get("/forms/healthz", headers=OPERATOR).get_json()
    assert operator["ok"] is False and operator["reasons"] == ["spool not writable (OperationalError)"]

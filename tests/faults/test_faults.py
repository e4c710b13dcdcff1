"""The fault suite: each scenario's figures (accepted, delivered, dead, lost, duplicated),
one summary line each under `pytest -s`; lost must always be 0.

Real parts only, on loopback: aiosmtpd with STARTTLS and AUTH, the service
under `gunicorn forms_service.wsgi:app`, HTTP clients posting real forms.
"""

from __future__ import annotations

import pytest

from harness.gunicorn import DOCUMENTED_OPTIONS
from tests.faults import scenarios
from tests.faults.rig import MAILS_PER_SUBMISSION, Figures, Rig

WORKERS = int(DOCUMENTED_OPTIONS[DOCUMENTED_OPTIONS.index("--workers") + 1])  # the rig serves as documented


@pytest.fixture
def rig(tmp_path) -> Rig:
    return Rig(tmp_path)


def report(figures: Figures) -> Figures:
    """Print the scenario's line and check what holds for every scenario."""
    print(f"\n{figures.line()}")
    assert figures.lost == 0
    assert figures.accepted > 0
    assert figures.delivered + figures.dead == figures.accepted
    return figures


def raw_spool(rig: Rig) -> bytes:
    """The spool file with its -wal and -shm companions, as a thief would read them."""
    return b"".join(path.read_bytes() for path in sorted(rig.data_dir.glob("spool.sqlite3*")))


def test_smtp_down_all_accepted_then_delivered_and_nothing_readable_at_rest(rig):
    """Everything is accepted while SMTP is down and delivered once it is back, unattended;
    meanwhile the raw spool files hold no submitted text, address or resumé bytes."""
    seen = {}

    def inspect(rig: Rig) -> None:
        assert rig.submissions.refused == 0
        queued = [state for _, state in rig.spool_states()]
        seen["queued"] = len(queued)
        seen["raw"] = raw_spool(rig)

    figures = report(scenarios.smtp_down(rig, inspect))
    assert figures.accepted == scenarios.SUBMISSIONS + 2 and figures.duplicated == 0
    assert seen["queued"] == figures.accepted * MAILS_PER_SUBMISSION
    volunteer = rig.sink.messages  # what was submitted, to look for in the raw files
    resume = next(part.get_content() for message in volunteer for part in message.parsed().iter_attachments())
    secrets = [
        b"Amina",
        b"amina@example.org",
        b"aidworker@example.org",
        b"cannot sleep",
        b"I want to listen",
        b"+41 22 000 00 00",
        resume[100:140],
        resume[-60:],
    ]
    for raw in (seen["raw"], raw_spool(rig)):
        assert len(raw) > 4096
        assert [secret for secret in secrets if secret in raw] == []


def test_smtp_slow_timeouts_are_retried(rig):
    figures = report(scenarios.smtp_slow(rig))
    assert rig.observed["timed_out"]
    assert figures.delivered == figures.accepted


@pytest.mark.parametrize("scenario", [scenarios.smtp_refusing_temporarily, scenarios.smtp_dropping_mid_data])
def test_temporary_refusals_and_dropped_connections_are_retried_without_duplicates(rig, scenario):
    figures = report(scenario(rig))
    assert (figures.delivered, figures.dead, figures.duplicated) == (figures.accepted, 0, 0)
    assert rig.sink.handler.script == type(rig.sink.handler.script)()  # every scripted failure was met


def test_permanent_refusals_go_dead_and_are_kept(rig):
    """Which two emails meet the refusals depends on the workers' order: association copies stay
    dead, acknowledgements are dropped (they hold nothing the association needs)."""
    figures = report(scenarios.smtp_refusing_permanently(rig))
    rows = rig.spool_rows()
    assert {(state, kind) for _, state, kind in rows} <= {("dead", "association")}
    assert len(rows) + figures.dropped == len(scenarios.PERMANENT_REPLIES)
    assert figures.dead == len({submission_id for submission_id, _, _ in rows})
    assert figures.duplicated == 0


def test_sigkill_under_load_then_restart_loses_nothing(rig):
    """Killed mid-request (uploads in flight) and mid-relay (DATA in progress): after a restart
    every accepted submission arrives; duplicates at most one per killed worker."""
    figures = report(scenarios.sigkill_under_load(rig))
    assert rig.submissions.cut >= 1  # requests were in flight when the server died
    assert rig.observed["relays_at_kill"] >= 1
    assert figures.dead == 0
    assert figures.duplicated <= WORKERS  # one message in hand per killed worker


@pytest.mark.parametrize("mount", [True, False], ids=["tmpfs-if-possible", "simulated"])
def test_full_disk_refuses_with_503_and_recovers(rig, mount):
    """Whether the disk really filled (a 1 MB tmpfs) or SQLite was capped: see rig.observed["disk"]."""
    figures = report(scenarios.full_disk(rig, mount))
    assert figures.refused == 3 and figures.accepted == 3 and figures.duplicated == 0
    assert rig.observed["refusal"] == {
        "ok": False,
        "error": (
            "Désolés, nous n’avons pas pu transmettre votre message pour l’instant. Rien n’a été envoyé. "
            "Veuillez réessayer dans quelques minutes."
        ),
    }
    if rig.observed["disk"] == "tmpfs":
        assert rig.observed["healthz_when_full"] == 503

"""`flask --app forms_service spool ...`: operator commands that show no personal data."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forms_service import extensions
from forms_service.outgoing import ACKNOWLEDGEMENT
from forms_service.spool import Sealer, Spool
from forms_service.spool.keys import ensure_key_file, read_key_file
from harness.gunicorn import flask_command, service_environment
from tests.spool.conftest import outgoing


def operated(app) -> Spool:
    """The spool create_app wired into `app`, with the deliverer and the commands."""
    return extensions.spool(app)


@pytest.fixture
def cli_spool(app) -> Spool:
    return operated(app)


@pytest.fixture
def run(app, cli_spool):
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        result = runner.invoke(args=["spool", *args], input=input)
        assert "@example.org" not in result.output and "Sentinel" not in result.output
        return result

    return invoke


def test_status(cli_spool, run):
    assert run("status").output == "queued: 0\ndead: 0\noldest queued: -\nlast delivery error: -\n"
    cli_spool.accept("sub-1", [outgoing("Sentinel", 1), outgoing("Sentinel", 2)])
    (entry, second) = cli_spool.claim("worker", 60, 10)
    cli_spool.dead(entry.id, "PermanentRelayError: message refused: 550")
    cli_spool.retry_later(second.id, "TemporaryRelayError: cannot open SMTP session: timed out")
    output = run("status").output
    assert output.startswith("queued: 1\ndead: 1\noldest queued: ")
    assert re.search(
        r" s\nlast delivery error: since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ: TemporaryRelayError: cannot ", output
    )
    cli_spool.delivered(second.id)  # by any worker or host: the error is the spool's
    assert run("status").output == "queued: 0\ndead: 1\noldest queued: -\nlast delivery error: -\n"


def test_dead_and_requeue(cli_spool, run):
    cli_spool.accept("sub-a", [outgoing("Sentinel", 1)])
    cli_spool.accept("sub-b", [outgoing("Sentinel", 2)])
    first, second = cli_spool.claim("worker", 60, 10)
    cli_spool.dead(first.id, "PermanentRelayError: message refused: 550")
    cli_spool.dead(second.id, "PermanentRelayError: message refused: 554")
    header, *rows = run("dead").output.splitlines()
    assert header == "id\tsubmission\tkind\tcreated\tattempts\tlast error"
    assert [row.split("\t")[:3] for row in rows] == [
        [str(first.id), "sub-a", "association"],
        [str(second.id), "sub-b", "association"],
    ]
    assert rows[0].endswith("Z\t1\tPermanentRelayError: message refused: 550")
    assert run("requeue").exit_code == 2
    assert run("requeue", str(first.id)).output == "requeued: 1\n"
    assert run("requeue", "--all").output == "requeued: 1\n"
    assert cli_spool.stats().dead == 0


def test_retry_delivers_now(cli_spool, run, smtp_server):
    cli_spool.accept("sub", [outgoing("Sentinel", 1)])
    (entry,) = cli_spool.claim("worker", 60, 10)
    cli_spool.retry_later(entry.id, "TemporaryRelayError: 451")  # next attempt in a minute or more
    output = run("retry").output
    assert output.startswith("due: 1, attempted: 1\nqueued: 0\n")
    assert len(smtp_server.messages) == 1


@pytest.fixture
def key_file_config(app_config, tmp_path) -> dict:
    """app_config with FORMS_SPOOL_KEY_FILE (a file beside the data folder) instead of FORMS_SPOOL_KEY."""
    key_file = tmp_path / "keys" / "spool.key"
    ensure_key_file(key_file)
    return {**app_config, "SPOOL_KEY": None, "SPOOL_KEY_FILE": str(key_file)}


def test_rotate_key_file(make_app, key_file_config):
    app = make_app(**key_file_config)
    spool = operated(app)
    for number in range(3):
        spool.accept(f"sub-{number}", [outgoing("Sentinel", number)])
    key_file = Path(key_file_config["SPOOL_KEY_FILE"])
    (old,) = read_key_file(key_file)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["spool", "rotate-key"]).output == "re-sealed: 3\n"
    new, kept = read_key_file(key_file)
    assert kept == old
    assert runner.invoke(args=["spool", "rotate-key", "--retire-old"]).output == (
        "re-sealed: 3\nold keys deleted from the key file\n"
    )
    assert read_key_file(key_file) == [new]
    assert len(Spool(spool.path, Sealer([new])).claim("check", 60, 10)) == 3


def test_rotate_setting_key(make_app):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    before = make_app(SPOOL_KEY=old.decode())
    operated(before).accept("sub", [outgoing("Sentinel")])
    after = make_app(SPOOL_KEY=[new.decode(), old.decode()])
    spool = operated(after)
    result = after.test_cli_runner().invoke(args=["spool", "rotate-key", "--retire-old"])
    assert result.output == "re-sealed: 1\nFORMS_SPOOL_KEY is set: remove the old keys from it yourself and restart\n"
    assert len(Spool(spool.path, Sealer([new])).claim("check", 60, 10)) == 1


def test_new_key(run):
    result = run("new-key")
    assert result.exit_code == 0
    assert Fernet(result.output.strip().encode())


def flask_spool(app_config, *args: str) -> str:
    """Run `flask --app forms_service spool ...` as an operator would: a new process,
    settings from real FORMS_* environment variables."""
    result = flask_command(app_config, "spool", *args)
    assert result.returncode == 0, result.stderr
    assert "@example.org" not in result.stdout and "Sentinel" not in result.stdout
    return result.stdout


def test_commands_in_a_subprocess_with_environment_settings(make_app, key_file_config, smtp_server):
    """status, requeue, rotate-key and retry, each a new process, as an operator runs them."""
    spool = operated(make_app(**key_file_config))
    spool.accept("sub-a", [outgoing("Sentinel", 1)])
    spool.accept("sub-b", [outgoing("Sentinel", 2)])
    first, second = spool.claim("worker", 60, 10)
    spool.dead(first.id, "PermanentRelayError: message refused: 550")
    spool.release([second.id], "worker")
    assert flask_spool(key_file_config, "status").startswith("queued: 1\ndead: 1\noldest queued: ")
    assert flask_spool(key_file_config, "requeue", "--all") == "requeued: 1\n"
    assert flask_spool(key_file_config, "status").startswith("queued: 2\ndead: 0\n")
    assert flask_spool(key_file_config, "rotate-key") == "re-sealed: 2\n"
    assert len(read_key_file(Path(key_file_config["SPOOL_KEY_FILE"]))) == 2
    assert flask_spool(key_file_config, "retry").startswith("due: 2, attempted: 2\nqueued: 0\ndead: 0\n")
    assert sorted(message.parsed()["Subject"] for message in smtp_server.messages) == ["Sentinel", "Sentinel"]


def test_dead_shows_the_kind_of_each_row(cli_spool, run):
    receipt = dataclasses.replace(outgoing("Sentinel", 2), kind=ACKNOWLEDGEMENT)
    cli_spool.accept("sub", [outgoing("Sentinel", 1), receipt])
    for entry in cli_spool.claim("worker", 60, 10):
        cli_spool.dead(entry.id, "expired after TemporaryRelayError: 451")
    rows = [row.split("\t") for row in run("dead").output.splitlines()[1:]]
    assert [(row[0], row[2]) for row in rows] == [("1", "association"), ("2", "acknowledgement")]


def test_discard_asks_first_unless_yes(cli_spool, run):
    cli_spool.accept("sub", [outgoing("Sentinel", 1), outgoing("Sentinel", 2)])
    first, second = cli_spool.claim("worker", 60, 10)
    cli_spool.dead(first.id, "PermanentRelayError: message refused: 550")
    cli_spool.dead(second.id, "PermanentRelayError: message refused: 550")
    kept = run("discard", str(first.id), input="n\n")
    assert kept.exit_code == 1 and "Discard dead message 1 (association, submission sub)?" in kept.output
    assert cli_spool.stats().dead == 2
    confirmed = run("discard", str(first.id), input="y\n")
    assert confirmed.exit_code == 0 and confirmed.output.endswith("discarded: 1\n")
    assert run("discard", str(second.id), "--yes").output == "discarded: 2\n"
    assert cli_spool.stats().dead == 0
    missing = run("discard", "2", "--yes")
    assert missing.exit_code == 1 and "no dead message has id 2" in missing.output


@pytest.mark.parametrize("retire", [[], ["--retire-old"]])
def test_rotate_key_skips_rows_no_key_opens_and_finishes(cli_spool, run, retire):
    cli_spool.accept("sub-a", [outgoing("Sentinel", 1)])
    Spool(cli_spool.path, Sealer([Fernet.generate_key()])).accept("sub-lost", [outgoing("Sentinel", 2)])
    cli_spool.accept("sub-b", [outgoing("Sentinel", 3)])
    result = run("rotate-key", *retire)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        "re-sealed: 2",
        "skipped, no key opens them (now dead, see `flask --app forms_service spool dead`): 2",
    ]
    assert [entry.submission_id for entry in cli_spool.list_dead()] == ["sub-lost"]
    if retire:  # the test app's keys are FORMS_SPOOL_KEY's
        assert lines[2] == "FORMS_SPOOL_KEY is set: remove the old keys from it yourself and restart"


def test_a_spool_no_key_opens_stops_the_service_but_not_the_commands(app, app_config):
    """The service's start names the problem in one line (status 4); the operator's commands still
    run, so `spool check` reports it and nothing is marked dead behind anyone's back."""
    operated(app).accept("sub", [outgoing("Sentinel")])
    env = service_environment({**app_config, "SPOOL_KEY": Fernet.generate_key().decode()})

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    start = command("-m", "forms_service.startup")
    assert start.returncode == 4
    assert start.stderr.startswith("forms_service: FORMS_SPOOL_KEY does not open 1 of the 1 messages in ")
    assert start.stderr.count("\n") == 1
    status = command("-m", "flask", "--app", "forms_service", "spool", "status")
    assert status.returncode == 0 and "queued: 1" in status.stdout
    check = command("-m", "flask", "--app", "forms_service", "spool", "check")
    assert check.returncode == 2 and check.stdout.startswith("SPOOL CRITICAL - ")
    assert "FORMS_SPOOL_KEY does not open 1 of the 1 messages" in check.stdout
    assert operated(app).stats().dead == 0

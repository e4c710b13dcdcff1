"""`flask --app forms_service spool check`: one line and a monitoring-plugins status, whatever happens."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

from harness.gunicorn import PROJECT, service_environment
from tests.spool.conftest import corrupt_outgoing_table, outgoing

LINE = re.compile(
    r"SPOOL (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| queued=\d+;\d+;\d+ dead=\d+;;0 "
    r"dead_acknowledgements=\d+ oldest=\d+s;\d+;\d+\n"
)
OK, WARNING, CRITICAL, UNKNOWN = range(4)


def check_in_process(app, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["spool", "check", *args])
    return result.exit_code, result.output


def flask_check(settings: dict, *args: str, command: str = "check") -> tuple[int, str]:
    """The command as monitoring runs it: a new process, settings from FORMS_* variables."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "forms_service", "spool", command, *args],
        cwd=PROJECT,
        env=service_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout


def assert_verdict(outcome: tuple[int, str], status: int, *phrases: str) -> str:
    code, output = outcome
    assert code == status, output
    assert LINE.fullmatch(output), output
    assert output.startswith(f"SPOOL {('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')[status]} - ")
    for phrase in phrases:
        assert phrase in output
    return output


def age(spool, seconds: float) -> None:
    """Make every queued message `seconds` older, as if it had waited that long."""
    with sqlite3.connect(spool.path) as db:
        db.execute("UPDATE outgoing SET created_at = created_at - ?", (seconds,))


def test_ok_in_a_subprocess(app_config):
    output = assert_verdict(flask_check(app_config), OK)
    assert output == (
        "SPOOL OK - 0 queued, 0 dead | queued=0;10;100 dead=0;;0 dead_acknowledgements=0 oldest=0s;900;3600\n"
    )


def test_an_old_message_is_a_warning_then_critical(app):
    spool = app.extensions["forms_spool"]
    spool.accept("sub", [outgoing("old")])
    assert_verdict(check_in_process(app), OK, "1 queued, 0 dead")
    age(spool, 1000)
    assert_verdict(check_in_process(app), WARNING, "seconds the oldest has waited (warning above 900)")
    assert_verdict(check_in_process(app, "--warning-age", "2000", "--critical-age", "3000"), OK)
    age(spool, 3000)
    assert_verdict(check_in_process(app), CRITICAL, "(critical above 3600)")


def test_a_long_queue_is_a_warning(app):
    spool = app.extensions["forms_spool"]
    for number in range(11):
        spool.accept(f"sub-{number}", [outgoing("queue", number)])
    assert_verdict(check_in_process(app), WARNING, "11 queued messages (warning above 10)", "11 queued, 0 dead")


def test_a_dead_association_copy_is_critical_a_dead_acknowledgement_is_not(app):
    spool = app.extensions["forms_spool"]
    spool.accept("sub", [outgoing("dead", 1)])
    (entry,) = spool.claim("worker", 60, 10)
    spool.dead(entry.id, "PermanentRelayError: message refused: 550")
    assert_verdict(check_in_process(app), CRITICAL, "1 association copies dead: `flask --app forms_service spool dead`")
    spool.discard(entry.id)
    assert_verdict(check_in_process(app), OK)


def test_an_unwritable_spool_is_critical(app):
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = ON")
    assert_verdict(check_in_process(app), CRITICAL, "spool not writable (OperationalError)")


def test_a_corrupt_page_is_critical_in_a_subprocess(app, app_config):
    corrupt_outgoing_table(app.extensions["forms_spool"].path)
    assert_verdict(flask_check(app_config), CRITICAL, "spool not writable (DatabaseError)")


def test_an_expired_key_is_critical_and_leaves_the_other_commands_working(app_config, pgp_keys):
    settings = {**app_config, "PGP_KEYS": [str(pgp_keys.files["good"]), str(pgp_keys.files["expired"])]}
    assert_verdict(
        flask_check(settings), CRITICAL, f"OpenPGP key {pgp_keys.fingerprint('expired')} expired on 2020-01-02"
    )
    assert flask_check(settings, command="status") == (0, "queued: 0\ndead: 0\noldest queued: -\n")
    only_expired = {**app_config, "PGP_KEYS": [str(pgp_keys.files["expired"])]}
    assert_verdict(flask_check(only_expired), CRITICAL, "no usable OpenPGP key")


def test_a_key_expiring_soon_is_a_warning(make_app, pgp_keys):
    app = make_app(PGP_KEYS=[str(pgp_keys.files["good"]), str(pgp_keys.files["expiring"])])
    assert_verdict(check_in_process(app), WARNING, f"OpenPGP key {pgp_keys.fingerprint('expiring')} expires on ")


def test_a_setting_that_prevents_start_up_is_critical(app_config):
    code, output = flask_check({**app_config, "SITE_URL": None})
    assert code == CRITICAL
    assert re.fullmatch(r"SPOOL CRITICAL - forms_service: FORMS_SITE_URL is missing or not a URL: [^\n]+\n", output)
    assert flask_check({**app_config, "SITE_URL": None}, "--warning-age", "60")[0] == CRITICAL
    status = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "forms_service", "spool", "status"],
        cwd=PROJECT,
        env=service_environment({**app_config, "SITE_URL": None}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (status.returncode, status.stdout) == (1, "")
    assert status.stderr.startswith("forms_service: FORMS_SITE_URL is missing")


def test_a_usage_error_is_unknown(app):
    code, output = check_in_process(app, "--warning-age", "soon")
    assert code == UNKNOWN and output.startswith("SPOOL UNKNOWN - usage: ") and output.count("\n") == 1

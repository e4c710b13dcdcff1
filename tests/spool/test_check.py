"""`flask --app forms_service spool check`: one line and a monitoring-plugins status, whatever happens."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests

from forms_service import extensions
from harness.gunicorn import Gunicorn, flask_command
from harness.settings import JSON, OPERATOR, SITE, support_form
from tests.service.helpers import wait_until
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
    result = flask_command(settings, "spool", command, *args)
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
    assert flask_check(settings, command="status") == (
        0,
        "queued: 0\ndead: 0\noldest queued: -\nlast delivery error: -\n",
    )
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
    status = flask_command({**app_config, "SITE_URL": None}, "spool", "status")
    assert (status.returncode, status.stdout) == (1, "")
    assert status.stderr.startswith("forms_service: FORMS_SITE_URL is missing")


def test_a_usage_error_is_unknown(app):
    code, output = check_in_process(app, "--warning-age", "soon")
    assert code == UNKNOWN and output.startswith("SPOOL UNKNOWN - usage: ") and output.count("\n") == 1


def delivery_error(settings: dict) -> str | None:
    """The spool's last delivery error, read from the file as another process would."""
    with sqlite3.connect(Path(settings["DATA_DIR"]) / "spool.sqlite3") as db:
        row = db.execute("SELECT error FROM delivery_error").fetchone()
    db.close()
    return row and row[0]


def test_a_refused_login_is_critical_at_once_and_the_mail_goes_once_it_is_fixed(app_config, smtp_server):
    """Issue 24 as the field runs it: gunicorn with three workers, the STARTTLS + AUTH server refusing the
    password with 535, the operator's commands in processes of their own, healthz with the token."""
    wrong = {**app_config, "MAIL_PASSWORD": "not-the-password", "RETRY_BASE_SECONDS": 0.2, "RETRY_MAX_SECONDS": 1}
    with Gunicorn(settings=wrong) as service:
        url = f"http://127.0.0.1:{service.port}/forms/support"
        assert requests.post(url, data=support_form(), headers={**SITE, **JSON}, timeout=30).status_code == 202
        assert wait_until(lambda: delivery_error(wrong), timeout=30)
        code, line = flask_check(wrong)
        status = flask_check(wrong, command="status")[1]
        public, operator = service.get("/forms/healthz"), service.get("/forms/healthz", headers=OPERATOR)
    reason = (
        "ActionRequired: authentication refused: 535 5.7.8 Authentication credentials invalid: "
        "see FORMS_MAIL_USERNAME, FORMS_MAIL_PASSWORD"
    )
    assert_verdict((code, line), CRITICAL, f": {reason} (mail is kept, sent once fixed); 2 queued, 0 dead")
    assert re.fullmatch(
        rf"queued: 2\ndead: 0\noldest queued: \d+ s\nlast delivery error: since [-\d]+ [:\d]+Z: {reason}\n", status
    )
    assert public == (200, b'{"ok":true}\n')  # submissions are still accepted
    body = json.loads(operator[1])
    assert operator[0] == 200 and (body["ok"], body["status"]) == (True, "CRITICAL")
    assert line.startswith(f"SPOOL CRITICAL - {'; '.join(body['reasons'])}; 2 queued, 0 dead | ")
    assert smtp_server.messages == []
    with Gunicorn(settings={**wrong, "MAIL_PASSWORD": app_config["MAIL_PASSWORD"]}):
        assert len(smtp_server.handler.wait_for(2, timeout=30)) == 2
        assert wait_until(lambda: delivery_error(wrong) is None)
    assert_verdict(flask_check(wrong), OK, "0 queued, 0 dead")


MISCONFIGURED = {
    "untrusted certificate": ({}, "certificate not trusted (unable to get local issuer certificate)"),
    "STARTTLS to implicit TLS": ({"MAIL_USE_TLS": True}, "the server speaks TLS at once: set FORMS_MAIL_USE_SSL"),
    "implicit TLS to STARTTLS": (
        {"MAIL_USE_SSL": True, "MAIL_USE_TLS": False},
        "the server does not speak TLS at once: unset FORMS_MAI",
    ),
    "sender refused": ({}, "sender refused: 550 5.7.1 <[address]>: Sender address rejected"),
}


@pytest.mark.parametrize("case", MISCONFIGURED)
def test_what_only_the_operator_can_fix_is_critical_at_once_and_kept(
    make_app, smtp_sink_factory, untrusted_ca, monkeypatch, case
):
    overrides, said = MISCONFIGURED[case]
    mode = "ssl" if case == "STARTTLS to implicit TLS" else "starttls"
    sink = smtp_sink_factory(mode=mode, ca=untrusted_ca if case == "untrusted certificate" else None)

    async def handle_MAIL(server, session, envelope, address, options):
        return f"550 5.7.1 <{address}>: Sender address rejected: not owned by user"

    if case == "sender refused":
        monkeypatch.setattr(sink.handler, "handle_MAIL", handle_MAIL, raising=False)
    settings = {**sink.mail_config(), "MAIL_USE_TLS": mode == "starttls", "MAIL_USE_SSL": False, "MAIL_TIMEOUT": 30}
    app = make_app(**{**settings, **overrides})
    spool = extensions.spool(app)
    spool.accept("sub", [outgoing("kept", 1), outgoing("kept", 2)])
    started = time.monotonic()
    extensions.deliverer(app).deliver_all()
    assert time.monotonic() - started < 10  # not FORMS_MAIL_TIMEOUT's 30 s
    output = assert_verdict(check_in_process(app), CRITICAL, said, "(mail is kept, sent once fixed); 2 queued, 0 dead")
    assert "@" not in output and sink.messages == []
    assert (spool.stats().queued, spool.stats().dead) == (2, 0)


def test_a_passing_failure_is_the_cause_of_a_late_queue_not_an_alert(app):
    spool = extensions.spool(app)
    spool.accept("sub", [outgoing("late")])
    (entry,) = spool.claim("worker", 60, 10)
    spool.retry_later(entry.id, "TemporaryRelayError: cannot open SMTP session: ConnectionRefusedError")
    assert_verdict(check_in_process(app), OK, "1 queued, 0 dead")
    age(spool, 1000)
    assert_verdict(
        check_in_process(app),
        WARNING,
        "(warning above 900); delivery failing since ",
        "Z: TemporaryRelayError: cannot open SMTP session: ConnectionRefusedError; 1 queued",
    )

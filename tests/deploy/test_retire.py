"""Retiring the relay (deploy/README.md, "Retire or uninstall", steps 2 and 3): the operator commands,
run as written with the service's settings, drain the spool, dead messages included, until it says
queued 0 and dead 0, the condition for deleting the data folder; and every accepted email arrived."""

from __future__ import annotations

from harness.gunicorn import flask_command
from harness.settings import JSON, SITE, support_form

SUBMISSIONS = 3
MAILS_PER_SUBMISSION = 2  # the association's email and the acknowledgement


def spool(settings: dict, *args: str) -> str:
    """`flask --app forms_service spool ARGS` as the operator runs it; its output."""
    result = flask_command(settings, "spool", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_operator_commands_drain_the_spool_before_removal(app, app_config, smtp_server):
    client = app.test_client()
    accepted = [
        client.post("/forms/support", data=support_form(), headers={**SITE, **JSON}).json["id"]
        for _ in range(SUBMISSIONS)
    ]
    assert spool(app_config, "status").startswith(f"queued: {SUBMISSIONS * MAILS_PER_SUBMISSION}\n")

    smtp_server.handler.script.append("550 5.1.1 Mailbox unavailable")  # one email refused for good
    spool(app_config, "retry")
    assert spool(app_config, "status").startswith("queued: 0\ndead: 1\n")
    dead = spool(app_config, "dead").splitlines()[1:]
    assert len(dead) == 1 and "550" in dead[0]

    spool(app_config, "requeue", "--all")
    spool(app_config, "retry")
    assert spool(app_config, "status").startswith("queued: 0\ndead: 0\n")
    received = {message.parsed()["Message-ID"].split("@")[0].lstrip("<") for message in smtp_server.messages}
    assert received == {
        f"{submission}.{number}" for submission in accepted for number in range(1, MAILS_PER_SUBMISSION + 1)
    }

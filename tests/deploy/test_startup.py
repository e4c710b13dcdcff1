"""The documented gunicorn command, run as the field runs it: a bad setting stops it for good
(exit status 4, which the systemd unit does not restart), whatever the number of workers, and the
unit's readiness probe waits until the application answers."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forms_service.startup import APP_LOAD_ERROR
from harness.gunicorn import GUNICORN, PROJECT, Gunicorn, service_environment
from harness.settings import service_settings

README = PROJECT / "README.md"
UNIT = PROJECT / "deploy" / "systemd" / "cocreatehumanity-forms@.service"
FIRST_PORT = "8001"  # the instance the documented command's --bind names
HALT_SECONDS = 20  # "within seconds": a bad setting is found before any worker forks


def documented_command() -> list[str]:
    """README's "Start" command, the one the unit runs too."""
    line = next(line.strip() for line in README.read_text().splitlines() if line.startswith("    gunicorn "))
    return shlex.split(line)


def unit_setting(name: str, instance: str = FIRST_PORT) -> str:
    """One setting of the template unit's `instance` (%i: the port), its continuation lines joined."""
    text = UNIT.read_text().replace("\\\n", " ").replace("%i", instance)
    return re.search(rf"^{name}=(.*)$", text, re.MULTILINE).group(1)


def test_the_unit_runs_the_documented_command():
    unit = shlex.split(unit_setting("ExecStart"))
    assert Path(unit[0]).name == "gunicorn" and unit[1:] == documented_command()[1:]
    assert unit_setting("RestartPreventExitStatus") == str(APP_LOAD_ERROR)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"SECRET_KEY": None}, "FORMS_SECRET_KEY"),
        ({"SPOOL_KEY": "not a key"}, "FORMS_SPOOL_KEY"),
        ({"MAIL_SERVER": "smtp.example.org", "MAIL_USE_TLS": False}, "FORMS_MAIL_SERVER"),
    ],
)
def test_a_bad_setting_stops_three_workers_with_status_4(overrides, setting, smtp_ca_file, tmp_path):
    settings = service_settings({}, smtp_ca_file, tmp_path / "data", SPOOL_KEY=Fernet.generate_key().decode())
    settings = {key: value for key, value in {**settings, **overrides}.items() if value is not None}
    command = [str(GUNICORN), *documented_command()[1:]]
    command[command.index("--bind") + 1] = "127.0.0.1:0"
    assert command[command.index("--workers") + 1] == "3"
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=PROJECT, env=service_environment(settings), capture_output=True, text=True, timeout=HALT_SECONDS
    )
    assert result.returncode == APP_LOAD_ERROR, result.stderr
    assert time.monotonic() - started < HALT_SECONDS
    named = [line for line in result.stderr.splitlines() if line.startswith("forms_service: ")]
    assert len(named) == 1 and named[0].startswith(f"forms_service: {setting} "), result.stderr
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr


def test_readiness_probe_waits_until_the_application_answers(smtp_server, smtp_ca_file, tmp_path):
    """ExecStartPost (what makes systemd call the unit started) run against a service that is
    still loading: it succeeds only once healthz answers, not when the master has booted."""
    settings = service_settings(
        smtp_server.mail_config(), smtp_ca_file, tmp_path / "data", SPOOL_KEY=Fernet.generate_key().decode()
    )
    service = Gunicorn(settings=settings)
    probe_command = shlex.split(unit_setting("ExecStartPost", str(service.port)))
    probe = subprocess.Popen(probe_command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # the probe must be refused a few times first: nothing listens yet
        assert probe.poll() is None, probe.communicate()
        with service:
            assert probe.wait(timeout=30) == 0, probe.communicate()
    finally:
        if probe.poll() is None:
            probe.kill()

"""deploy/.env.example and the systemd unit: complete, well-formed, and accepted by the real tools."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forms_service import config
from forms_service.app import create_app

PROJECT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = PROJECT / "deploy" / ".env.example"
UNIT = PROJECT / "deploy" / "systemd" / "cocreatehumanity-forms@.service"
CHECK_UNIT = UNIT.with_name("cocreatehumanity-forms-check.service")
CHECK_TIMER = UNIT.with_name("cocreatehumanity-forms-check.timer")
ALERT_TEMPLATE = UNIT.with_name("cocreatehumanity-forms-alert@.service")
SETTING = re.compile(r"^(#\s*)?FORMS_([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)
MENTIONED = re.compile(r"\bFORMS_([A-Z][A-Z0-9_]*[A-Z0-9])\b")


def known_settings() -> set[str]:
    """Every setting the service knows: config.py's defaults, and each FORMS_* name its modules read."""
    sources = (PROJECT / "forms_service").glob("*.py")
    return set(config.DEFAULTS) | {name for path in sources for name in MENTIONED.findall(path.read_text())}


def example_lines() -> list[tuple[bool, str, str]]:
    """(active, name, raw value) for each FORMS_ line of .env.example, commented-out ones included."""
    return [(not comment, name, value) for comment, name, value in SETTING.findall(ENV_EXAMPLE.read_text())]


def test_env_example_explains_every_setting_and_only_real_ones():
    listed = {name for _, name, _ in example_lines()}
    assert known_settings() - listed == set(), "missing from deploy/.env.example"
    assert listed - known_settings() == set(), "unknown to forms_service"


def test_every_setting_in_env_example_has_an_explanation():
    """Each setting, or the run of settings it belongs to, comes right after a comment saying what it is."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if SETTING.match(line):
            above = next(text for text in reversed(lines[:number]) if not SETTING.match(text))
            assert above.startswith("# ") and not above.startswith("## "), f"{line!r} comes without a comment"


def test_env_example_values_start_the_service(tmp_path, monkeypatch):
    """The file's values parse as systemd and a shell read them, and pass the start-up checks.

    Only the secrets (deliberately empty) and the data folder are filled in here.
    """
    for active, name, value in example_lines():
        if active:
            monkeypatch.setenv(f"FORMS_{name}", " ".join(shlex.split(value)))
    monkeypatch.setenv("FORMS_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("FORMS_SPOOL_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("FORMS_MAIL_PASSWORD", "the SMTP password")
    monkeypatch.setenv("FORMS_DATA_DIR", str(tmp_path))
    app = create_app()
    assert app.config["PROXY_COUNT"] == 1
    assert app.config["VOLUNTEER_RECIPIENTS"] == ["volunteers@cocreatehumanity.org"]


def test_the_secret_and_spool_keys_are_left_for_the_operator_to_generate():
    assert "FORMS_SECRET_KEY=\n" in ENV_EXAMPLE.read_text()
    assert "FORMS_SPOOL_KEY=\n" in ENV_EXAMPLE.read_text()


def installed_unit(tmp_path: Path) -> Path:
    """The template unit as instance 8001, with the release's virtualenv moved to this checkout's, as
    `verify` checks ExecStart exists."""
    unit = tmp_path / UNIT.name.replace("@", "@8001")
    unit.write_text(
        UNIT.read_text().replace("/srv/cocreatehumanity/slots/%i/.venv/bin/", f"{Path(sys.executable).parent}/")
    )
    return unit


def installed_check_units(tmp_path: Path) -> list[Path]:
    """The monitoring check (with the live release's virtualenv moved to this checkout's), its timer,
    and the alert template as the instance the check's OnFailure= starts."""
    venv = f"{Path(sys.executable).parent}/"
    for source in (CHECK_UNIT, CHECK_TIMER, ALERT_TEMPLATE):
        unit = source.read_text().replace("/srv/cocreatehumanity/current/.venv/bin/", venv)
        (tmp_path / source.name).write_text(unit)
    return [
        tmp_path / CHECK_UNIT.name,
        tmp_path / CHECK_TIMER.name,
        tmp_path / ALERT_TEMPLATE.name.replace("@", f"@{CHECK_UNIT.name}"),
    ]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_unit_passes_verify_without_a_warning(tmp_path):
    check = subprocess.run(["systemd-analyze", "verify", str(installed_unit(tmp_path))], capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == "", check.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_unit_is_hardened(tmp_path):
    """systemd's own rating: 'OK' (below 2.0 of 10) means little exposure if gunicorn were compromised."""
    check = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(installed_unit(tmp_path))], capture_output=True, text=True
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", check.stdout)
    assert level, check.stdout + check.stderr
    assert float(level.group(1)) < 2.0


def test_unit_writes_only_the_data_folder_of_env_example():
    unit = UNIT.read_text()
    data_dir = dict((name, value) for _, name, value in example_lines())["DATA_DIR"]
    assert f"ReadWritePaths={data_dir}\n" in unit
    assert f"StateDirectory={Path(data_dir).name}\n" in unit
    for hardening in ("ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "EnvironmentFile="):
        assert hardening in unit


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_monitoring_check_units_pass_verify_without_a_warning(tmp_path):
    check = subprocess.run(
        ["systemd-analyze", "verify", *map(str, installed_check_units(tmp_path))], capture_output=True, text=True
    )
    assert check.returncode == 0 and check.stderr == "", check.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_monitoring_check_is_confined_like_the_service(tmp_path):
    check_unit = installed_check_units(tmp_path)[0]
    check = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(check_unit)], capture_output=True, text=True
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", check.stdout)
    assert level and float(level.group(1)) < 2.0, check.stdout + check.stderr


def test_monitoring_check_runs_spool_check_as_the_service_does():
    """Same user, settings and data folder as the service, the live release's code (as the operator
    commands run it), every 5 minutes; a failure starts the alert."""
    service, check = UNIT.read_text(), CHECK_UNIT.read_text()
    for setting in ("User=", "Group=", "EnvironmentFile=", "ReadWritePaths="):
        line = next(line for line in service.splitlines() if line.startswith(setting))
        assert f"{line}\n" in check
    assert "WorkingDirectory=/srv/cocreatehumanity/current\n" in check
    assert "ExecStart=/srv/cocreatehumanity/current/.venv/bin/flask --app forms_service spool check\n" in check
    assert f"OnFailure={ALERT_TEMPLATE.name.replace('@', '@%n')}\n" in check
    assert "OnUnitActiveSec=5min\n" in CHECK_TIMER.read_text()


README = PROJECT / "README.md"
TABLE_ROW = re.compile(r"^\| ((?:`FORMS_[A-Z0-9_]+`(?:, )?)+) \| ([^|]+) \|", re.MULTILINE)


def readme_defaults() -> dict[str, str]:
    """Setting name (without FORMS_) -> the default README's settings table states for it."""
    table = README.read_text().split("### Settings", 1)[1]
    return {
        name: default.strip()
        for names, default in TABLE_ROW.findall(table)
        for name in re.findall(r"`FORMS_([A-Z0-9_]+)`", names)
    }


def test_readme_states_every_setting_with_its_declared_default():
    """One declaration per setting (config.SETTINGS): README's table can no longer drift from it."""
    stated = readme_defaults()
    declared = {setting.name: documented_default(setting) for setting in config.SETTINGS if not setting.internal}
    assert stated == declared


def documented_default(setting: config.Setting) -> str:
    """The default as README's table states it."""
    if setting.shown is not None:
        return setting.shown
    if setting.default is config.REQUIRED:
        return "required"
    if setting.default is None:
        return "none"
    literal = setting.default if isinstance(setting.default, str) else json.dumps(setting.default)
    return f"`{literal}`"


def test_env_example_shows_optional_settings_at_their_declared_default():
    """A commented-out `# FORMS_X=value` shows X at its default (the file's own convention);
    settings without a literal default (none, or worked out from others) may show an example."""
    for active, name, raw in example_lines():
        default = next(setting.default for setting in config.SETTINGS if setting.name == name)
        if active or default is None or default is config.REQUIRED or not raw:
            continue
        text = " ".join(shlex.split(raw))
        try:
            shown = json.loads(text)
        except ValueError:
            shown = text
        assert shown == default, f"FORMS_{name}"

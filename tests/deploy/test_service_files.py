"""deploy/.env.example and the systemd unit: complete, well-formed, and accepted by the real tools."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forms_service import config
from forms_service.app import create_app

PROJECT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = PROJECT / "deploy" / ".env.example"
UNIT = PROJECT / "deploy" / "systemd" / "cocreatehumanity-forms@.service"
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
    monkeypatch.setenv("FORMS_MAIL_PASSWORD", "the SMTP password")
    monkeypatch.setenv("FORMS_DATA_DIR", str(tmp_path))
    app = create_app()
    assert app.config["PROXY_COUNT"] == 1
    assert app.config["VOLUNTEER_RECIPIENTS"] == ["volunteers@cocreatehumanity.org"]


def test_the_secret_key_is_left_for_the_operator_to_generate():
    assert ("FORMS_SECRET_KEY=\n") in ENV_EXAMPLE.read_text()


def installed_unit(tmp_path: Path) -> Path:
    """The template unit as instance 8001, with the release's virtualenv moved to this checkout's, as
    `verify` checks ExecStart exists."""
    unit = tmp_path / UNIT.name.replace("@", "@8001")
    unit.write_text(UNIT.read_text().replace("/srv/cocreatehumanity/slots/%i/.venv/bin/",
                                             f"{Path(sys.executable).parent}/"))
    return unit


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_unit_passes_verify_without_a_warning(tmp_path):
    check = subprocess.run(["systemd-analyze", "verify", str(installed_unit(tmp_path))],
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == "", check.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_unit_is_hardened(tmp_path):
    """systemd's own rating: 'OK' (below 2.0 of 10) means little exposure if gunicorn were compromised."""
    check = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(installed_unit(tmp_path))],
                           capture_output=True, text=True)
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

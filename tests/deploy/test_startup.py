"""The documented gunicorn command, run as the field runs it: a bad setting stops it for good
(exit status 4, which the systemd unit does not restart), whatever the number of workers; a fault of the
host that passes (a full or read-only disk under FORMS_DATA_DIR, a locked file) stops it with another
status, named as itself, and the unit starts it again until it runs; the unit's readiness probe waits
until the application answers."""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forms_service.config import ConfigError
from forms_service.faults import HostFault, unusable
from forms_service.startup import APP_LOAD_ERROR, HOST_FAULT
from harness.gunicorn import GUNICORN, PROJECT, Gunicorn, flask_command, service_environment
from harness.settings import service_settings
from harness.smtp_sink import free_port
from tests.deploy.helpers import FAKE_SYSTEMCTL
from tests.deploy.test_guide import start_up
from tests.service.helpers import wait_until

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


def test_the_unit_restarts_all_but_a_bad_setting_without_spinning_or_giving_up():
    """Restart on failure except status 4; a few seconds between starts (each costs about half a second
    of CPU); no start limit, which would leave the relay down for good after a few failed starts."""
    assert unit_setting("Restart") == "on-failure"
    assert unit_setting("RestartPreventExitStatus") == str(APP_LOAD_ERROR) != str(HOST_FAULT)
    assert float(unit_setting("RestartSec")) >= 5
    assert unit_setting("StartLimitIntervalSec") == "0"


def test_the_unit_leaves_no_core_file():
    """As the service itself makes every process undumpable (tests/service/test_core_dumps.py)."""
    assert unit_setting("LimitCORE") == "0"


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"SECRET_KEY": None}, "FORMS_SECRET_KEY"),
        ({"SPOOL_KEY": "not a key"}, "FORMS_SPOOL_KEY"),
        ({"MAIL_SERVER": "smtp.example.org", "MAIL_USE_TLS": False}, "FORMS_MAIL_SERVER"),
        ({"UPLOAD_SLOTS": 3}, "FORMS_UPLOAD_SLOTS"),  # as many as --workers: none left for a request for help
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


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs of its own (root mounts it, as on CI), unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(f"a tmpfs cannot be mounted here (root and CAP_SYS_ADMIN are needed): {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """A file that takes every free block of `disk`; deleting it frees the space."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError as full:
                assert full.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


FAULTS = {
    # fault: (make it, the cause the line names, end it)
    "full disk": (fill, "no space left on device", Path.unlink),
    "read-only file system": (
        lambda disk: remount(disk, "ro") or disk,
        "read-only file system",
        lambda disk: remount(disk, "rw"),
    ),
}


@pytest.mark.parametrize("first_start", [False, True], ids=["empty folder", "after a first start"])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_passing_fault_of_the_host_stops_start_up_until_it_is_gone(fault, first_start, small_disk, smtp_ca_file):
    """`python -m forms_service.startup` (the master's check) on a disk that fails under FORMS_DATA_DIR:
    a status other than 0 and 4, one line naming FORMS_DATA_DIR and the cause; started once the fault is
    gone. With the spool and counters files there from a first start, SQLite says "disk I/O error" when
    its -shm file cannot grow: the line still says what the disk says."""
    make, cause, end = FAULTS[fault]
    settings = service_settings({}, smtp_ca_file, small_disk / "data", RATELIMIT_ENABLED=True)
    if first_start:
        assert start_up(settings) == (0, "", "")
    made = make(small_disk)
    status, output, errors = start_up(settings)
    assert status not in (0, APP_LOAD_ERROR) and output == ""
    (line,) = errors.splitlines()
    assert line.startswith("forms_service: FORMS_DATA_DIR ") and f" now: {cause} (" in line, line
    end(made)
    assert start_up(settings) == (0, "", "")


def test_spool_check_says_critical_with_the_same_line(small_disk, smtp_ca_file):
    """The monitoring's view of a full disk: CRITICAL (status 2) with start-up's own line, not a setting."""
    settings = service_settings({}, smtp_ca_file, small_disk / "data")
    fill(small_disk)
    check = flask_command(settings, "spool", "check")
    assert check.returncode == 2, check.stderr
    assert check.stdout.startswith(
        "SPOOL CRITICAL - forms_service: FORMS_DATA_DIR cannot hold the spool now: no space left on device ("
    )


def test_a_full_disk_under_the_counters_names_their_setting(small_disk, smtp_ca_file, tmp_path):
    """FORMS_RATELIMIT_STORAGE_URI naming a file on the full disk, the data folder elsewhere: the line
    names that setting and the lack of space, not a wrong URI (exit status 3, not 4)."""
    uri = f"sqlite://{small_disk / 'counters.sqlite3'}"
    settings = service_settings({}, smtp_ca_file, tmp_path / "data", RATELIMIT_STORAGE_URI=uri)
    filler = fill(small_disk)
    status, _, errors = start_up(settings)
    assert (status, errors.splitlines()) == (
        HOST_FAULT,
        [
            "forms_service: FORMS_RATELIMIT_STORAGE_URI cannot hold the rate-limit counters now:"
            f" no space left on device ({small_disk / 'counters.sqlite3'})"
        ],
    )
    filler.unlink()
    assert start_up(settings) == (0, "", "")


def test_a_locked_file_is_a_passing_fault_a_wrong_path_or_a_foreign_file_a_setting(tmp_path):
    """How start-up tells them apart, from the errors SQLite and the system really raise."""
    spool = tmp_path / "spool.sqlite3"
    holder = sqlite3.connect(spool, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError) as locked:
        sqlite3.connect(spool, timeout=0).execute("CREATE TABLE u (x)")
    holder.execute("ROLLBACK")
    fault = unusable("DATA_DIR", spool, locked.value, "cannot hold the spool")
    assert isinstance(fault, HostFault)
    assert fault.code == f"forms_service: FORMS_DATA_DIR cannot hold the spool now: locked by another process ({spool})"

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError) as not_a_folder:
        (blocker / "data").mkdir(parents=True)
    assert isinstance(unusable("DATA_DIR", blocker / "data" / "x", not_a_folder.value, "cannot hold"), ConfigError)

    foreign = tmp_path / "foreign.sqlite3"
    foreign.write_bytes(b"not a database, but something else entirely" * 100)
    with pytest.raises(sqlite3.DatabaseError) as not_a_spool:
        sqlite3.connect(foreign).execute("SELECT * FROM sqlite_master")
    assert isinstance(unusable("DATA_DIR", foreign, not_a_spool.value, "cannot hold"), ConfigError)


class Systemd:
    """The template unit installed and run by tests/deploy/fake_systemctl.py, which does what systemd does
    with its Restart= settings; the release on `port` is this checkout and its virtualenv."""

    def __init__(self, tmp_path: Path, settings: dict):
        srv, self.state, units = tmp_path / "srv", tmp_path / "systemd", tmp_path / "units"
        for folder in (srv / "slots", self.state, units):
            folder.mkdir(parents=True)
        self.port = str(free_port())
        (srv / "slots" / self.port).mkdir()
        (srv / "slots" / self.port / ".venv").symlink_to(Path(sys.executable).parents[1])
        (units / UNIT.name).write_text(UNIT.read_text())
        env_file = tmp_path / "forms.env"
        env_file.write_text("".join(f"FORMS_{key}='{json.dumps(value)}'\n" for key, value in settings.items()))
        self.env = {
            **os.environ,
            "FAKE_SYSTEMD_STATE": str(self.state),
            "FAKE_SYSTEMD_UNIT_DIR": str(units),
            "FAKE_SYSTEMD_PATHS": json.dumps(
                {"/srv/cocreatehumanity": str(srv), "/etc/cocreatehumanity/forms.env": str(env_file)}
            ),
        }
        self.unit = f"cocreatehumanity-forms@{self.port}"

    def systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(FAKE_SYSTEMCTL), *args, self.unit], env=self.env, capture_output=True, text=True
        )

    def show(self) -> dict:
        return json.loads(self.systemctl("show").stdout)

    def log(self) -> str:
        return (self.state / f"{self.unit}.service.log").read_text(errors="replace")


def test_the_unit_starts_the_relay_again_once_the_disk_has_room(small_disk, smtp_server, smtp_ca_file, tmp_path):
    """With the unit's own restart settings: the first start on a full disk fails with the one line, the
    unit waits to start again (and again) by itself, and the relay answers once space is freed."""
    systemd = Systemd(tmp_path, service_settings(smtp_server.mail_config(), smtp_ca_file, small_disk / "data"))
    filler = fill(small_disk)
    try:
        assert systemd.systemctl("start").returncode != 0
        assert wait_until(lambda: systemd.show()["state"] != "activating", timeout=30)
        state = systemd.show()
        assert (state["state"], state["statuses"]) == ("auto-restart", [HOST_FAULT]), systemd.log()
        assert "forms_service: FORMS_DATA_DIR cannot hold the spool now: no space left on device" in systemd.log()
        filler.unlink()
        assert wait_until(lambda: systemd.show()["state"] == "active", timeout=60), systemd.log()
        assert systemd.show()["restarts"] >= 1
        assert systemd.systemctl("is-active").returncode == 0
    finally:
        systemd.systemctl("stop")
    assert systemd.show()["state"] == "inactive"


def test_the_unit_leaves_a_bad_setting_stopped(smtp_server, smtp_ca_file, tmp_path):
    settings = service_settings(smtp_server.mail_config(), smtp_ca_file, tmp_path / "data")
    del settings["SECRET_KEY"]
    systemd = Systemd(tmp_path, settings)
    try:
        assert systemd.systemctl("start").returncode != 0
        assert wait_until(lambda: systemd.show()["state"] != "activating", timeout=30)
        state = systemd.show()
        assert (state["state"], state["statuses"], state["restarts"]) == ("failed", [APP_LOAD_ERROR], 0)
    finally:
        systemd.systemctl("stop")

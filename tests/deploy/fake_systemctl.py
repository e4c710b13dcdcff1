"""A stand-in for `systemctl` that does with the real unit file what systemd would, for deploy/release.

The tests run deploy/release where there is no systemd to drive: this reads
the installed template unit, puts the instance name where it says %i, starts
ExecStart in WorkingDirectory with exactly the EnvironmentFile's variables,
and counts the unit started only once every ExecStartPost (the readiness
probe) succeeded; stop is SIGTERM to the main process, then SIGKILL to what
is left after TimeoutStopSec, as KillMode=mixed does. Production paths in the
unit are mapped to the test's by FAKE_SYSTEMD_PATHS (JSON, old -> new);
state (pid and log per instance, enabled instances) lives in FAKE_SYSTEMD_STATE.

    python fake_systemctl.py daemon-reload | start|stop|restart UNIT | enable|disable [--quiet] UNIT
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("FAKE_SYSTEMD_STATE", "."))
UNIT_DIR = Path(os.environ.get("FAKE_SYSTEMD_UNIT_DIR", "/etc/systemd/system"))
PATHS: dict[str, str] = json.loads(os.environ.get("FAKE_SYSTEMD_PATHS", "{}"))


def service_section(unit: str) -> dict[str, list[str]]:
    """The [Service] settings of `unit` (name@instance.service) from its template, %i and paths replaced."""
    template, instance = unit.removesuffix(".service").split("@", 1)
    text = (UNIT_DIR / f"{template}@.service").read_text().replace("\\\n", " ").replace("%i", instance)
    for production, here in PATHS.items():
        text = text.replace(production, here)
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            settings.setdefault(name, []).append(value)
    return settings


def environment(settings: dict[str, list[str]]) -> dict[str, str]:
    """What systemd gives the service: a bare PATH and the EnvironmentFile's variables, nothing else."""
    variables = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    for path in settings.get("EnvironmentFile", []):
        for line in Path(path).read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                name, value = line.split("=", 1)
                variables[name.strip()] = " ".join(shlex.split(value))
    return variables


def pid_file(unit: str) -> Path:
    return STATE / f"{unit}.pid"


def running(pid: int) -> bool:
    """Whether `pid` still runs (an unreaped zombie counts as gone: it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def main_pid(unit: str) -> int | None:
    path = pid_file(unit)
    if path.exists() and running(int(path.read_text())):
        return int(path.read_text())
    return None


def start(unit: str) -> int:
    if main_pid(unit):
        return 0
    settings = service_section(unit)
    env = environment(settings)
    log = open(STATE / f"{unit}.log", "ab")
    process = subprocess.Popen(
        shlex.split(settings["ExecStart"][0]),
        cwd=settings["WorkingDirectory"][0],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    pid_file(unit).write_text(str(process.pid))
    for command in settings.get("ExecStartPost", []):
        if not started_post(subprocess.Popen(shlex.split(command), env=env, stdout=log, stderr=log), process):
            stop(unit)
            return 1
    return 0


def started_post(probe: subprocess.Popen, main: subprocess.Popen) -> bool:
    """Whether an ExecStartPost command succeeded; as with systemd, the main process exiting
    meanwhile fails the start at once (the probe is killed rather than left to retry)."""
    while probe.poll() is None:
        if main.poll() is not None:
            probe.kill()
            probe.wait()
            return False
        time.sleep(0.05)
    return probe.returncode == 0


def stop(unit: str) -> int:
    pid = main_pid(unit)
    if pid is None:
        pid_file(unit).unlink(missing_ok=True)  # it exited on its own
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + float(service_section(unit).get("TimeoutStopSec", ["90"])[0])
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)  # KillMode=mixed: whatever outlived the main process
    except ProcessLookupError:
        pass
    pid_file(unit).unlink()
    return 0


def enablement(unit: str, enabled: bool) -> int:
    path = STATE / "enabled.json"
    units = set(json.loads(path.read_text())) if path.exists() else set()
    units = units | {unit} if enabled else units - {unit}
    path.write_text(json.dumps(sorted(units)))
    return 0


def main(argv: list[str]) -> int:
    command, *rest = argv
    units = [arg if arg.endswith(".service") else f"{arg}.service" for arg in rest if not arg.startswith("-")]
    if command == "daemon-reload":
        return 0
    if command in ("enable", "disable"):
        return max(enablement(unit, command == "enable") for unit in units)
    if command == "restart":
        return max(stop(unit) or start(unit) for unit in units)
    return max({"start": start, "stop": stop}[command](unit) for unit in units)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A stand-in for `systemctl` that does with the real unit files what systemd would, for deploy/release and the
guide's commands.

The tests run where there is no systemd to drive: this reads the installed
unit (a template's instance: %i replaced by the instance name), starts
ExecStart in WorkingDirectory with exactly the EnvironmentFile's variables,
and counts the unit started only once every ExecStartPost (the readiness
probe) succeeded. A supervisor process per started unit then does what
systemd does when the main process ends: Restart= (no, on-failure, always),
RestartSec=, RestartPreventExitStatus=, and the [Unit] section's start
limit (StartLimitIntervalSec=, StartLimitBurst=, systemd's defaults 10 s
and 5 when unset). Stop is SIGTERM to the main process, then SIGKILL to what
is left after TimeoutStopSec, as KillMode=mixed does. enable and disable
make and remove the [Install] section's WantedBy= links in the unit folder.
Production paths in the unit are mapped to the test's by FAKE_SYSTEMD_PATHS
(JSON, old -> new); state (pids, log and state per unit) lives in
FAKE_SYSTEMD_STATE, the unit folder is FAKE_SYSTEMD_UNIT_DIR.

    python fake_systemctl.py daemon-reload | reset-failed | start|stop|restart|reload UNIT...
        | enable|disable [--now] [--quiet] UNIT... | is-active [--quiet] UNIT | show UNIT
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
CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}  # clean ends for on-failure
POLL_SECONDS = 0.05


def unit_file(unit: str) -> Path:
    """The file that defines `unit`: its own, or its template's (name@.service) for an instance."""
    own = UNIT_DIR / unit
    if own.exists() or "@" not in unit:
        return own
    template, rest = unit.split("@", 1)
    return UNIT_DIR / f"{template}@{rest[rest.index('.') :]}"


def sections(unit: str) -> dict[str, dict[str, list[str]]]:
    """The unit's settings by section ("Unit", "Service", "Install"), %i and paths replaced."""
    instance = unit.split("@", 1)[1].rsplit(".", 1)[0] if "@" in unit else ""
    text = unit_file(unit).read_text().replace("\\\n", " ").replace("%i", instance)
    for production, here in PATHS.items():
        text = text.replace(production, here)
    found: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            found.setdefault(section, {}).setdefault(name, []).append(value)
    return found


def setting(unit: str, section: str, name: str, default: str) -> str:
    return sections(unit).get(section, {}).get(name, [default])[-1]


def seconds(value: str) -> float:
    """A systemd time span as this file's units write them: 10, 10s, 5min, 0."""
    for suffix, factor in (("min", 60), ("ms", 0.001), ("s", 1)):
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    """What systemd gives the service: a bare PATH and the EnvironmentFile's variables, nothing else."""
    variables = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    for path in service.get("EnvironmentFile", []):
        for line in Path(path).read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                name, value = line.split("=", 1)
                variables[name.strip()] = " ".join(shlex.split(value))
    return variables


def running(pid: int) -> bool:
    """Whether `pid` still runs (an unreaped zombie counts as gone: it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_of(path: Path) -> int | None:
    if path.exists() and running(int(path.read_text())):
        return int(path.read_text())
    return None


def main_pid(unit: str) -> int | None:
    return pid_of(STATE / f"{unit}.pid")


def supervisor_pid(unit: str) -> int | None:
    return pid_of(STATE / f"{unit}.supervisor")


def show(unit: str) -> dict:
    """What the supervisor last recorded: state (activating, active, auto-restart, failed, inactive),
    restarts (how many times it started the unit again by itself), statuses (each main process's exit)."""
    path = STATE / f"{unit}.state"
    return json.loads(path.read_text()) if path.exists() else {"state": "inactive", "restarts": 0, "statuses": []}


def record(unit: str, **changes) -> None:
    path = STATE / f"{unit}.state"
    path.with_suffix(".new").write_text(json.dumps({**show(unit), **changes}))
    path.with_suffix(".new").replace(path)


def start(unit: str) -> int:
    """Start `unit`'s supervisor and wait for the outcome of its first start: 0 once the unit is started."""
    if not unit.endswith(".service"):
        return 0  # timers and targets: nothing runs here
    if supervisor_pid(unit):
        return 0
    record(unit, state="activating", restarts=0, statuses=[])
    with open(STATE / f"{unit}.log", "ab") as log:  # never the caller's: it would wait for the supervisor's end
        supervisor = subprocess.Popen(
            [sys.executable, __file__, "supervise", unit],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    outcome = supervisor.stdout.readline()
    supervisor.stdout.close()
    return 0 if outcome == b"started\n" else 1


class Supervisor:
    """What systemd does for one started service: run it, and start it again as its unit says."""

    def __init__(self, unit: str):
        self.unit = unit
        self.stopping = False
        self.starts: list[float] = []
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, *_) -> None:
        self.stopping = True

    def run(self) -> None:
        (STATE / f"{self.unit}.supervisor").write_text(str(os.getpid()))
        while True:
            started, status = self.attempt()
            statuses = [*show(self.unit)["statuses"], status]
            if self.stopping or not self.restarts(status, started):
                record(self.unit, state="inactive" if self.stopping or status == 0 else "failed", statuses=statuses)
                return
            record(self.unit, state="auto-restart", statuses=statuses)
            if not self.wait(seconds(setting(self.unit, "Service", "RestartSec", "0.1"))):
                record(self.unit, state="inactive")
                return
            if self.start_limit_hit():
                record(self.unit, state="failed")
                return
            record(self.unit, restarts=show(self.unit)["restarts"] + 1)

    def attempt(self) -> tuple[bool, int]:
        """Start the main process and its probes; (whether the start succeeded, how the process ended)."""
        self.starts.append(time.monotonic())
        service = sections(self.unit)["Service"]
        env = environment(service)
        record(self.unit, state="activating")
        with open(STATE / f"{self.unit}.log", "ab") as log:
            main = subprocess.Popen(
                shlex.split(service["ExecStart"][0]),
                cwd=service["WorkingDirectory"][0],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            (STATE / f"{self.unit}.pid").write_text(str(main.pid))
            started = all(
                self.probe(subprocess.Popen(shlex.split(command), env=env, stdout=log, stderr=log), main)
                for command in service.get("ExecStartPost", [])
            )
        if not sys.stdout.closed:  # the first start's outcome, for the `start` that waits for it
            print("started" if started else "failed", flush=True)
            sys.stdout.close()
        if started and not self.stopping:
            record(self.unit, state="active")
            while main.poll() is None and not self.stopping:
                time.sleep(POLL_SECONDS)
        if main.poll() is None:
            self.terminate(main, seconds(service.get("TimeoutStopSec", ["90"])[0]))
        return started, main.returncode

    def probe(self, probe: subprocess.Popen, main: subprocess.Popen) -> bool:
        """Whether an ExecStartPost command succeeded; as with systemd, the main process exiting
        meanwhile fails the start at once (the probe is killed rather than left to retry)."""
        while probe.poll() is None:
            if main.poll() is not None or self.stopping:
                probe.kill()
                probe.wait()
                return False
            time.sleep(POLL_SECONDS)
        return probe.returncode == 0

    @staticmethod
    def terminate(main: subprocess.Popen, timeout: float) -> None:
        main.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while main.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        try:
            os.killpg(main.pid, signal.SIGKILL)  # KillMode=mixed: whatever outlived the main process
        except ProcessLookupError:
            pass
        main.wait()

    def restarts(self, status: int, started: bool) -> bool:
        """Restart= and RestartPreventExitStatus= for a main process that ended with `status`
        (negative: killed by that signal); a start whose probe failed is a failure whatever the status."""
        mode = setting(self.unit, "Service", "Restart", "no")
        prevented = setting(self.unit, "Service", "RestartPreventExitStatus", "").split()
        if mode == "no" or str(status) in prevented:
            return False
        clean = started and (status == 0 or (status < 0 and -status in CLEAN_SIGNALS))
        return mode == "always" or (mode == "on-failure" and not clean)

    def start_limit_hit(self) -> bool:
        """More than StartLimitBurst starts within StartLimitIntervalSec (0: no limit) make systemd give up."""
        interval = seconds(setting(self.unit, "Unit", "StartLimitIntervalSec", "10"))
        burst = int(setting(self.unit, "Unit", "StartLimitBurst", "5"))
        recent = [moment for moment in self.starts if moment > time.monotonic() - interval]
        return interval > 0 and len(recent) >= burst

    def wait(self, delay: float) -> bool:
        """Sleep `delay` seconds unless stopped meanwhile; False when stopped."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(POLL_SECONDS)
        return not self.stopping


def stop(unit: str) -> int:
    """Stop the supervisor (it stops the main process, as above) and wait until both are gone."""
    supervisor = supervisor_pid(unit)
    if supervisor is None:
        return 0
    os.kill(supervisor, signal.SIGTERM)
    while running(supervisor):
        time.sleep(POLL_SECONDS)
    (STATE / f"{unit}.supervisor").unlink(missing_ok=True)
    (STATE / f"{unit}.pid").unlink(missing_ok=True)
    return 0


def enablement(unit: str, enabled: bool) -> int:
    """The [Install] section's WantedBy= links, as `systemctl enable` and `disable` make and remove them."""
    for target in sections(unit).get("Install", {}).get("WantedBy", []):
        link = UNIT_DIR / f"{target}.wants" / unit
        if enabled:
            link.parent.mkdir(exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(unit_file(unit))
        else:
            link.unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    command, *rest = argv
    units = [arg if "." in arg else f"{arg}.service" for arg in rest if not arg.startswith("-")]
    if command in ("daemon-reload", "reset-failed"):
        return 0
    if command == "reload":  # units of this folder get SIGHUP (ExecReload=); others (nginx) are not run here
        pid = main_pid(units[0])
        if pid:
            os.kill(pid, signal.SIGHUP)
        return 0
    if command == "supervise":
        Supervisor(units[0]).run()
        return 0
    if command == "show":
        print(json.dumps(show(units[0])))
        return 0
    if command == "is-active":
        return 0 if show(units[0])["state"] == "active" and supervisor_pid(units[0]) else 3
    if command in ("enable", "disable"):
        status = max(enablement(unit, command == "enable") for unit in units)
        if "--now" in rest:
            status = max(status, *((start if command == "enable" else stop)(unit) for unit in units))
        return status
    if command == "restart":
        return max(stop(unit) or start(unit) for unit in units)
    return max({"start": start, "stop": stop}[command](unit) for unit in units)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

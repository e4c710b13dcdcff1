"""The production server setup on loopback: gunicorn as README.md's "Start" documents it.

Used by the benchmarks (the forms service and a bare Flask app under the same
setup) and by the hostile-input tests that need a real HTTP server in front
of the app, so both measure what production runs rather than a dev server.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.cgroup import MemoryCgroup

PROJECT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
FORMS_APP = "forms_service.wsgi:app"
# README.md, "Start": `gunicorn --config python:forms_service.startup forms_service.wsgi:app --bind
# 127.0.0.1:8001 --workers 3 --no-control-socket`
# (gunicorn's default sync worker class); keep in step with it.
STARTUP_OPTIONS = ("--config", "python:forms_service.startup")  # the forms app's own start-up check
WORKER_OPTIONS = ("--workers", "3")
DOCUMENTED_OPTIONS = (*STARTUP_OPTIONS, *WORKER_OPTIONS)
# Not a performance setting: gunicorn 27 otherwise puts a control socket at one fixed
# path in $HOME, which several servers started side by side would fight over.
LOOPBACK_OPTIONS = ("--no-control-socket",)
START_TIMEOUT = 20.0
LISTEN_BACKLOG = 2048  # gunicorn's default


def service_environment(settings: dict | None = None) -> dict[str, str]:
    """This process's environment with every FORMS_* variable replaced by `settings` (keys without
    the prefix, JSON-encoded as config.py parses them): a start-up sees exactly those settings."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FORMS_")}
    return {
        **clean,
        **{f"FORMS_{key}": json.dumps(value) for key, value in (settings or {}).items() if key != "TESTING"},
    }


def flask_command(settings: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`flask --app forms_service ARGS` as the operator runs it (deploy/README.md): the venv's flask, a new
    process, settings from FORMS_* variables only; its status and output, as text."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("flask")), "--app", "forms_service", *args],
        cwd=PROJECT,
        env=service_environment(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Gunicorn:
    """gunicorn serving a WSGI app on a free loopback port; a context manager, entered once.

    The listening socket is opened here and handed to gunicorn (`--bind
    fd://N`): with a port number only, another server that took the same port
    meanwhile would answer the health check in gunicorn's place. `health_path`
    is polled until it answers, so a run never starts while workers are still
    importing the app. `project`: the folder it runs in, whose forms_service it
    serves (a copy of the project, in tests/deploy/test_new_form.py). `cgroup`:
    a memory cgroup (harness/cgroup.py) that gunicorn, and so every worker, runs in.
    `environment`: variables other than settings (a benchmark's instruments).
    """

    def __init__(
        self,
        app: str = FORMS_APP,
        settings: dict | None = None,
        *,
        options: tuple[str, ...] = DOCUMENTED_OPTIONS,
        health_path: str = "/forms/healthz",
        project: Path = PROJECT,
        cgroup: MemoryCgroup | None = None,
        environment: dict | None = None,
    ):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=LISTEN_BACKLOG)
        self.port = self.listener.getsockname()[1]
        self.health_path = health_path
        self.command = [str(GUNICORN), app, "--bind", f"fd://{self.listener.fileno()}", *options, *LOOPBACK_OPTIONS]
        if cgroup:
            self.command = cgroup.command(self.command)
        self.project = project  # gunicorn imports the app from its working directory first
        self.env = {**service_environment(settings), **(environment or {})}
        self.process: subprocess.Popen | None = None
        # A file, not a pipe: a full pipe would block gunicorn's logging mid-benchmark.
        self.log = tempfile.TemporaryFile()

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.project,
            env=self.env,
            pass_fds=(self.listener.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        # gunicorn has its copy; once it is gone, connections must be refused, not queued here.
        self.listener.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.output()}")
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT:.0f} s")

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.log.close()

    def _healthy(self) -> bool:
        try:
            return self.get(self.health_path, timeout=1)[0] == 200
        except OSError:
            return False

    def get(self, path: str, timeout: float = 10.0, headers: dict | None = None) -> tuple[int, bytes]:
        """Status and body of a GET on the server."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def output(self) -> str:
        """What gunicorn and the app logged so far (for failure messages)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def pids(self) -> list[int]:
        """The master and its workers (the processes whose memory the service uses)."""
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [master, *map(int, children)]

    def stop(self) -> None:
        """Graceful stop (SIGTERM lets workers finish their request), then reap."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

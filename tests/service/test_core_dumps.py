"""A crashed process leaves no core file holding what people wrote (issue 22, part 6).

Every process that handles a submission is not dumpable and has a core limit of 0
(forms_service.startup.forbid_core_dumps): gunicorn's master and workers, `flask` commands,
`make run`'s dev server (tests/run/test_make_run.py). The gunicorn test starts it with the
core limit raised, as outside systemd, kills a worker with SIGSEGV after a submission and
looks where the kernel writes cores; a control process started the same way must leave one
there, so that a machine writing no cores at all cannot make the test pass.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from harness.gunicorn import DOCUMENTED_OPTIONS, Gunicorn, flask_command
from harness.settings import JSON, SITE, service_settings, support_form
from tests.service.helpers import wait_until

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern").read_text().strip()
CANARY = "core-canary: I cannot sleep since the convoy"
REPORT_DUMPABLE = textwrap.dedent(
    """
    import ctypes, resource
    print("dumpable", ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE)[0])
    """
)

pytestmark = pytest.mark.skipif(
    CORE_PATTERN.startswith("|"),
    reason=f"cores go to a program here ({CORE_PATTERN}), not to a file this test can look for",
)


@pytest.fixture
def cores_allowed():
    """This process's core limit raised for the test, so that what it starts may dump (as `ulimit -c unlimited`)."""
    before = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    yield
    resource.setrlimit(resource.RLIMIT_CORE, before)


def cores_in(folder: Path) -> list[Path]:
    """The core files the kernel wrote for processes working in `folder` (core_pattern "core",
    "core.%p"...; an absolute pattern names its own folder)."""
    pattern = Path(CORE_PATTERN)
    where = pattern.parent if pattern.is_absolute() else folder
    return sorted(where.glob(pattern.name.split("%", 1)[0] + "*"))


def crash(command: list[str], folder: Path, **options) -> int:
    """Run `command` in `folder` until it ends; its return code."""
    return subprocess.run(command, cwd=folder, check=False, timeout=60, **options).returncode


def test_a_worker_killed_after_a_submission_leaves_no_core(cores_allowed, sink, smtp_ca_file, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    killed = crash([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], control)
    assert killed == -signal.SIGSEGV and cores_in(control), "this machine writes no core files: nothing to prove"

    workdir = tmp_path / "service"
    workdir.mkdir()
    settings = service_settings(sink.mail_config(), smtp_ca_file, tmp_path / "data")
    with Gunicorn(settings=settings, options=DOCUMENTED_OPTIONS, project=workdir) as server:
        url = f"http://127.0.0.1:{server.port}/forms/support"
        answer = requests.post(url, data=support_form(message=CANARY), headers={**SITE, **JSON}, timeout=30)
        assert answer.status_code == 202
        master, *workers = server.pids()
        for pid in [master, *workers]:
            assert Path(f"/proc/{pid}/cwd").resolve() == workdir
            assert re.search(r"^Max core file size\s+0\s", Path(f"/proc/{pid}/limits").read_text(), re.MULTILINE)
        for pid in workers:
            os.kill(pid, signal.SIGSEGV)
        assert wait_until(lambda: len(set(server.pids()[1:]) - set(workers)) == len(workers), 30), server.output()
        assert f"Worker (pid:{workers[0]}) was sent SIGSEGV" in server.output()
    assert cores_in(workdir) == []
    assert [path for path in tmp_path.rglob("core*") if path.parent != control] == []


def test_flask_commands_are_not_dumpable(sink, smtp_ca_file, tmp_path):
    """`flask --app forms_service ...` (the spool commands read every queued message) builds the
    app from the environment: not dumpable, core limit 0, whatever it inherited."""
    settings = service_settings(sink.mail_config(), smtp_ca_file, tmp_path / "data")
    shell = flask_command(settings, "shell", stdin=REPORT_DUMPABLE)
    assert shell.returncode == 0, shell.stderr
    reported = re.search(r"dumpable (\d+) (\d+)", shell.stdout)  # PR_GET_DUMPABLE, the core limit
    assert reported and reported.groups() == ("0", "0"), shell.stdout + shell.stderr

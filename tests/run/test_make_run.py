"""`make run` as a newcomer uses it: one process serving site and forms, mail saved as .eml files.

The real dev server runs as a child process (what the Makefile starts), so
these tests see what a person at the terminal sees: the lines it prints,
the files it writes, and how it stops on Ctrl-C.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from forms_service.static_site import PROJECT
from harness.smtp_sink import free_port

FIRST_BUILD_SECONDS = 180  # a cold mkdocs build on a busy 2-core machine
SUPPORT = {
    "email": "aidworker@example.org",
    "name": "Sam",
    "message": "Back from a hard mission, I cannot sleep.",
    "situation": "between_missions",
    "consent": "yes",
    "lang": "en",
    "website": "",
}


class DevServer:
    """`python -m forms_service.devserver` in a child process, its output collected line by line."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port, self.smtp_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [
            sys.executable,
            "-m",
            "forms_service.devserver",
            "--port",
            str(self.port),
            "--smtp-port",
            str(self.smtp_port),
            "--folder",
            str(folder),
        ]
        # Started with SIGINT ignored, as a script's background job is: Ctrl-C must stop it all the same.
        ignoring_ctrl_c = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]
        self.process = subprocess.Popen(
            ignoring_ctrl_c + command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._new_line = threading.Condition()
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()

    def _collect(self) -> None:
        """Read output in the background: the pipe must never fill up and block the server."""
        for line in self.process.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:  # end of output: the process is gone, stop waiting
            self._new_line.notify_all()

    def wait_for_line(self, pattern: str, timeout: float) -> str:
        """The first printed line matching `pattern`; fails with the whole output otherwise."""
        found = lambda: next((line for line in self.lines if re.search(pattern, line)), None)  # noqa: E731
        with self._new_line:
            self._new_line.wait_for(lambda: found() or self.process.poll() is not None, timeout)
            assert found(), "\n".join(self.lines)
            return found()

    def output(self) -> str:
        return "\n".join(self.lines)


def port_is_free(port: int) -> bool:
    """True when nothing listens on the loopback port any more."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def devserver(tmp_path_factory):
    """One dev server for the module (its first build is the slow part); killed if a test left it running."""
    server = DevServer(tmp_path_factory.mktemp("dev"))
    server.wait_for_line(r"^open\s+http://127\.0\.0\.1", FIRST_BUILD_SECONDS)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_it_can_leave_no_core_file(devserver):
    """It holds what people type too: not dumpable, core limit 0 (forms_service.startup.forbid_core_dumps)."""
    limits = Path(f"/proc/{devserver.process.pid}/limits").read_text()
    assert re.search(r"^Max core file size\s+0\s", limits, re.MULTILINE), limits


def test_it_says_where_mail_goes_and_where_to_open(devserver):
    assert devserver.wait_for_line(r"^mail\s+every relayed message", 1).endswith(str(devserver.folder / "mail"))
    assert devserver.wait_for_line(r"^open", 1).split()[1] == devserver.url


@pytest.mark.parametrize("path, lang", [("", "fr"), ("en/", "en")])
def test_site_is_served_in_each_language(devserver, path, lang):
    response = requests.get(devserver.url + path, timeout=10)
    assert response.status_code == 200
    assert f'<html lang="{lang}"' in response.text


def test_a_support_request_lands_as_an_eml_file(devserver):
    # multipart, as the site's form sends it; Origin as a browser on the site sends it
    response = requests.post(
        devserver.url + "forms/support",
        files={name: (None, value) for name, value in SUPPORT.items()},
        headers={"Origin": devserver.url.rstrip("/")},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == devserver.url + "en/support-thanks.html"
    line = devserver.wait_for_line(r"^mail\s+\S+\.eml\s+to support@example.org", 30)
    saved = Path(line.split()[1])
    assert saved.parent == devserver.folder / "mail" and saved.is_file()
    assert b"Back from a hard mission" in saved.read_bytes()


def test_ctrl_c_stops_everything_cleanly(devserver):
    """Last in the module: it stops the shared server."""
    devserver.process.send_signal(signal.SIGINT)
    assert devserver.process.wait(timeout=30) in (0, 130)
    devserver.reader.join(10)  # it has read the last lines
    assert "Traceback" not in devserver.output()
    assert port_is_free(devserver.smtp_port)
    assert port_is_free(devserver.port)

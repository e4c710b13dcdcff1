"""deploy/release upgrades and rolls back a running relay under a steady stream of submissions:
no failed request, and every accepted submission's emails reach the SMTP server.

Everything but systemd is real: the script itself, the nginx configuration
it installs and reloads (Debian's nginx, unprivileged paths), the template
unit's ExecStart and readiness probe (run by tests/deploy/fake_systemctl.py
as systemd would), gunicorn with three workers, and aiosmtpd over STARTTLS.
The two releases are copies of this checkout sharing the test's virtualenv
(`make install` would take minutes); each has a stand-in site/ naming it.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from cryptography.fernet import Fernet

from harness.nginx import NGINX, PROJECT, LocalNginx
from harness.settings import JSON, service_settings, support_form
from harness.smtp_sink import free_port
from tests.deploy.copies import copy_checkout
from tests.deploy.helpers import FAKE_SYSTEMCTL
from tests.service.helpers import wait_until

RELEASE = PROJECT / "deploy" / "release"
DRAINING = "waiting for nginx's workers from before the reload"
UNIT = "cocreatehumanity-forms"
CLIENTS = 3
PACE_SECONDS = 0.4  # between two posts of one client: a few submissions a second in all
DELIVERY_TIMEOUT = 120  # a message leased by a stopped instance waits for its lease (10 x MAIL_TIMEOUT)


def make_release(root: Path, name: str) -> Path:
    """A release as `deploy/release build` leaves it: the project's files, .venv, site/, REVISION."""
    release = copy_checkout(root / "releases" / name)
    (release / ".venv").symlink_to(Path(sys.executable).parents[1])
    (release / "site").mkdir()
    (release / "site" / "index.html").write_text(f"<!doctype html><title>{name}</title><p>release {name}</p>\n")
    (release / "REVISION").write_text("test\n")
    return release


@dataclass
class Load:
    """Clients sending `post` (a support request through nginx) until stopped; every answer is kept."""

    post: Callable[[], requests.Response]
    accepted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]

    def client(self) -> None:
        while not self.stopping.is_set():
            try:
                response = self.post()
                if response.status_code == 202:
                    self.accepted.append(response.json()["id"])
                else:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
            except requests.RequestException as error:
                self.failures.append(repr(error))
            self.stopping.wait(PACE_SECONDS)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def more_accepted(self, count: int) -> bool:
        """Wait until `count` more submissions than now were accepted."""
        target = len(self.accepted) + count
        return wait_until(lambda: len(self.accepted) >= target, timeout=30)


class Host:
    """The server: releases under `root`, nginx, the fake systemd; `release(...)` runs deploy/release."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "srv"
        self.ports = (free_port(), free_port())
        self.state = tmp_path / "systemd"
        self.units = units = tmp_path / "units"
        for folder in (self.state, units, self.root):
            folder.mkdir()
        self.env_file = tmp_path / "forms.env"
        upstream = tmp_path / "nginx" / "cocreatehumanity-upstream.conf"
        upstream.parent.mkdir()
        # Installed once, as the guide says; from then on deploy/release rewrites it.
        upstream.write_text(
            (PROJECT / "deploy" / "nginx" / "cocreatehumanity-upstream.conf")
            .read_text()
            .replace("127.0.0.1:8001", f"127.0.0.1:{self.ports[0]}")
        )
        self.nginx = LocalNginx(upstream.parent, self.root / "site", upstream=upstream)
        self.origin = self.nginx.url.rstrip("/")
        workdir = self.nginx.workdir
        nginx = f"{NGINX} -c {self.nginx.conf} -p {workdir}"
        self.env = {
            **os.environ,
            "RELEASE_ROOT": str(self.root),
            "RELEASE_PORTS": " ".join(map(str, self.ports)),
            "RELEASE_NGINX_SNIPPET": str(workdir / "site.conf"),
            "RELEASE_NGINX_UPSTREAM": str(upstream),
            "RELEASE_NGINX_TEST": f"{nginx} -t -q",
            "RELEASE_NGINX_RELOAD": f"{nginx} -s reload",
            "RELEASE_NGINX_PID": str(workdir / "nginx.pid"),
            "RELEASE_SYSTEMCTL": f"{sys.executable} {FAKE_SYSTEMCTL}",
            "RELEASE_UNIT_DIR": str(units),
            "FAKE_SYSTEMD_STATE": str(self.state),
            "FAKE_SYSTEMD_UNIT_DIR": str(units),
            "FAKE_SYSTEMD_PATHS": json.dumps(
                {"/srv/cocreatehumanity": str(self.root), "/etc/cocreatehumanity/forms.env": str(self.env_file)}
            ),
        }

    def configure(self, settings: dict) -> None:
        """forms.env with these settings, quoted as systemd reads them."""
        self.env_file.write_text("".join(f"FORMS_{key}='{json.dumps(value)}'\n" for key, value in settings.items()))

    def release(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(RELEASE), *args], env=self.env, capture_output=True, text=True, timeout=300)

    def release_during_slow_upload(self, *args: str) -> tuple[subprocess.CompletedProcess, str]:
        """Run deploy/release while a visitor's upload is half sent to one of nginx's workers; send the
        rest only once the script has reloaded nginx and says it waits for the old workers (or has
        ended). That worker still proxies to the old instance: its answer, JSON, comes second."""
        body = urlencode(support_form()).encode()
        upload = socket.create_connection(("127.0.0.1", self.nginx.port), timeout=30)
        upload.sendall(
            f"POST /forms/support HTTP/1.1\r\nHost: 127.0.0.1:{self.nginx.port}\r\nOrigin: {self.origin}\r\n"
            "Accept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[:20]
        )
        script = subprocess.Popen(
            [str(RELEASE), *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        said: list[str] = []

        def listen() -> None:
            for line in script.stderr:
                said.append(line)

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        assert wait_until(lambda: script.poll() is not None or any(DRAINING in line for line in said), timeout=120)
        upload.sendall(body[20:])
        response = http.client.HTTPResponse(upload)
        response.begin()
        answer = f"{response.status} {response.read().decode(errors='replace')}"
        upload.close()
        stdout = script.stdout.read()
        script.wait(timeout=300)
        reader.join(timeout=10)
        return subprocess.CompletedProcess(script.args, script.returncode, stdout, "".join(said)), answer

    def post(self) -> requests.Response:
        """One support request through nginx, as the site's script sends it."""
        return requests.post(
            self.nginx.url + "forms/support", data=support_form(), headers={**JSON, "Origin": self.origin}, timeout=30
        )

    def main_pid(self, port: int) -> int | None:
        """The gunicorn master of the instance on `port`, if it runs."""
        pid_file = self.state / f"{UNIT}@{port}.service.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def serving(self, port: int) -> str:
        """The release the instance on `port` runs, from its working directory."""
        return Path(os.readlink(f"/proc/{self.main_pid(port)}/cwd")).name

    def enabled(self) -> list[str]:
        """The instances enabled at boot: the links `systemctl enable` made."""
        return sorted(link.name for link in (self.units / "multi-user.target.wants").iterdir())

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in self.state.glob("*.log"))

    def stop(self) -> None:
        for port in self.ports:
            subprocess.run([sys.executable, str(FAKE_SYSTEMCTL), "stop", f"{UNIT}@{port}"], env=self.env)
        self.nginx.stop()


@pytest.fixture
def host(smtp_server, smtp_ca_file, tmp_path):
    """A server with releases "one" and "two" and nginx running, "one" installed by a first switch."""
    host = Host(tmp_path)
    try:
        host.configure(
            service_settings(
                smtp_server.mail_config(),
                smtp_ca_file,
                tmp_path / "data",
                SITE_URL=host.origin,
                ALLOWED_ORIGINS=[host.origin],
                PROXY_COUNT=1,
                SPOOL_KEY=Fernet.generate_key().decode(),
            )
        )
        make_release(host.root, "one")
        make_release(host.root, "two")
        host.nginx.start()
        installed = host.release("switch", "one")
        assert installed.returncode == 0, installed.stderr + host.logs()
        yield host
    finally:
        host.stop()


def test_first_install_serves_the_release_on_the_other_port(host):
    first, second = host.ports
    assert host.serving(second) == "one" and host.main_pid(first) is None
    assert host.enabled() == [f"{UNIT}@{second}.service"]
    assert "release one" in requests.get(host.nginx.url, timeout=10).text
    assert host.post().status_code == 202


def test_upgrade_and_rollback_under_load_lose_nothing(host, smtp_server):
    first, second = host.ports
    with Load(host.post) as load:
        assert load.more_accepted(5), load.failures
        upgraded, upload = host.release_during_slow_upload("switch", "two")
        assert upgraded.returncode == 0, upgraded.stderr + host.logs()
        assert load.more_accepted(5), load.failures
        assert host.serving(first) == "two" and host.main_pid(second) is None
        assert host.enabled() == [f"{UNIT}@{first}.service"]
        assert "release two" in requests.get(host.nginx.url, timeout=10).text

        rolled_back, upload_back = host.release_during_slow_upload("rollback")
        assert rolled_back.returncode == 0, rolled_back.stderr + host.logs()
        assert load.more_accepted(5), load.failures
        assert host.serving(second) == "one" and host.main_pid(first) is None
        assert host.enabled() == [f"{UNIT}@{second}.service"]
        assert "release one" in requests.get(host.nginx.url, timeout=10).text

    assert load.failures == []
    for answer in (upload, upload_back):
        assert answer.startswith("202 "), answer
        load.accepted.append(json.loads(answer[4:])["id"])
    listing = [line.split()[:2] for line in host.release("list").stdout.splitlines()]
    assert ["live", "one"] in listing and ["previous", "two"] in listing

    def every_email_arrived() -> bool:
        received = Counter(message.parsed()["Message-ID"].split("@")[0].lstrip("<") for message in smtp_server.messages)
        return all(received[f"{submission}.{number}"] for submission in load.accepted for number in (1, 2))

    assert wait_until(every_email_arrived, timeout=DELIVERY_TIMEOUT), host.logs()


def code_that_cannot_start(release: Path) -> None:
    """What a half-installed release does: the app cannot import a package."""
    (release / "forms_service" / "__init__.py").write_text("import flask_that_is_not_installed\n")


def nginx_configuration_it_refuses(release: Path) -> None:
    snippet = release / "deploy" / "nginx" / "cocreatehumanity-site.conf"
    snippet.write_text(snippet.read_text() + "not_an_nginx_directive on;\n")


@pytest.mark.parametrize("breakage", [code_that_cannot_start, nginx_configuration_it_refuses])
def test_a_release_that_fails_changes_nothing(host, breakage):
    first, second = host.ports
    snippet, upstream = (
        Path(host.env[name]).read_text() for name in ("RELEASE_NGINX_SNIPPET", "RELEASE_NGINX_UPSTREAM")
    )
    breakage(host.root / "releases" / "two")
    failed = host.release("switch", "two")
    assert failed.returncode != 0 and "nothing changed" in failed.stderr, failed.stderr
    assert host.serving(second) == "one" and host.main_pid(first) is None
    assert Path(host.env["RELEASE_NGINX_SNIPPET"]).read_text() == snippet
    assert Path(host.env["RELEASE_NGINX_UPSTREAM"]).read_text() == upstream
    assert os.readlink(host.root / "current") == "releases/one"
    assert "release one" in requests.get(host.nginx.url, timeout=10).text
    assert host.post().status_code == 202


def test_restart_starts_the_live_release_again_on_the_other_port(host):
    """How new settings in forms.env take effect without downtime."""
    first, second = host.ports
    restarted = host.release("restart")
    assert restarted.returncode == 0, restarted.stderr + host.logs()
    assert host.serving(first) == "one" and host.main_pid(second) is None
    assert not (host.root / "previous").exists()
    assert host.post().status_code == 202


def test_prune_deletes_every_release_but_the_live_and_the_previous_one(host):
    assert host.release("switch", "two").returncode == 0
    make_release(host.root, "three")
    pruned = host.release("prune")
    assert pruned.returncode == 0 and pruned.stdout == "deleted: three\n", pruned.stderr
    assert sorted(path.name for path in (host.root / "releases").iterdir()) == ["one", "two"]
    assert "release two" in requests.get(host.nginx.url, timeout=10).text

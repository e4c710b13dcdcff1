"""Run the deploy/ nginx configuration on loopback, unprivileged paths and all.

Used by the deploy tests and the Lighthouse benchmark, so what they measure is
what production serves: the same snippet and upstream file, only root and the
upstream's port moved (and, for tests of a hung service, the read timeout shortened).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from harness.cgroup import MemoryCgroup
from harness.smtp_sink import free_port

PROJECT = Path(__file__).resolve().parent.parent
SNIPPET = PROJECT / "deploy" / "nginx" / "cocreatehumanity-site.conf"
UPSTREAM_FILE = PROJECT / "deploy" / "nginx" / "cocreatehumanity-upstream.conf"
UPSTREAM_SERVER = re.compile(r"server 127\.0\.0\.1:[0-9]+;")
READ_TIMEOUT = "proxy_read_timeout 60s;"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class LocalNginx:
    """nginx serving `site_dir` with the deploy snippet, /forms to `forms_port`, or to the
    upstream block of the file `upstream` (deploy/nginx/cocreatehumanity-upstream.conf's place).

    One worker with 1024 connections (Debian's nginx.conf: 768 per worker, a worker per core), so a
    flood of a few hundred clients, each also an upstream connection, meets the service, not this limit.
    Logs go where Debian's nginx.conf sends them, in its format (the access log
    names the client), into `workdir`, so a test can read what production would
    keep; the error log at info level, below production's, to see more.
    `read_timeout` replaces the snippet's proxy_read_timeout, so that a test of a
    stalled service does not wait a minute. `cgroup`: a memory cgroup
    (harness/cgroup.py) that nginx, and so its workers, run in.
    """

    def __init__(
        self,
        workdir: Path,
        site_dir: Path,
        forms_port: int | None = None,
        port: int | None = None,
        upstream: Path | None = None,
        read_timeout: str | None = None,
        cgroup: MemoryCgroup | None = None,
    ):
        self.workdir = Path(workdir)
        self.cgroup = cgroup
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        # Production speaks HTTP/2 (over TLS); this port speaks it in clear, to clients that know.
        self.http2_port = free_port()
        self.conf = self.workdir / "nginx.conf"
        snippet = SNIPPET.read_text().replace("/srv/cocreatehumanity/site", str(Path(site_dir).resolve()))
        if read_timeout:
            assert READ_TIMEOUT in snippet, "the snippet's read timeout changed: update harness/nginx.py"
            snippet = snippet.replace(READ_TIMEOUT, f"proxy_read_timeout {read_timeout};")
        (self.workdir / "site.conf").write_text(snippet)
        temp = "\n".join(
            f"  {name}_temp_path {self.workdir / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        if not upstream:  # the shipped file with the port moved, as deploy/release installs it
            upstream = self.workdir / "upstream.conf"
            upstream.write_text(
                UPSTREAM_SERVER.sub(f"server 127.0.0.1:{forms_port or free_port()};", UPSTREAM_FILE.read_text())
            )
        self.conf.write_text(
            f"""{user}daemon off;
worker_processes 1;
pid {self.workdir / "nginx.pid"};
error_log {self.workdir / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log {self.workdir / "access.log"};
{temp}
  include {upstream};
  server {{
    listen 127.0.0.1:{self.port};
    listen 127.0.0.1:{self.http2_port} http2;
    include {self.workdir / "site.conf"};
  }}
}}
"""
        )
        self.process: subprocess.Popen | None = None

    def check(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the configuration."""
        return subprocess.run(
            [NGINX, "-t", "-c", str(self.conf), "-p", str(self.workdir)], capture_output=True, text=True
        )

    def logs(self) -> str:
        """Everything nginx has logged so far: access, error and its standard error."""
        return "".join(path.read_text(errors="replace") for path in sorted(self.workdir.glob("*.log")))

    def open_files(self) -> list[str]:
        """The files nginx's processes hold open, deleted ones included (nginx unlinks
        a temporary file as soon as it creates it, so only this shows one in use)."""
        pids = [
            self.process.pid,
            *Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split(),
        ]
        paths = []
        for pid in pids:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    paths.append(os.readlink(fd))
                except FileNotFoundError:  # closed meanwhile
                    continue
        return paths

    def start(self) -> LocalNginx:
        log = open(self.workdir / "stderr.log", "wb")
        command = [NGINX, "-c", str(self.conf), "-p", str(self.workdir)]
        self.process = subprocess.Popen(self.cgroup.command(command) if self.cgroup else command, stderr=log)
        if listening(self.port):
            return self
        self.stop()
        raise RuntimeError((self.workdir / "stderr.log").read_text())

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def listening(port: int, seconds: float = 10.0) -> bool:
    """True once something accepts connections on the loopback `port`, False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False

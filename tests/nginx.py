"""Run the deploy/ nginx configuration on loopback, unprivileged paths and all.

Used by the deploy tests and the Lighthouse benchmark, so what they measure is
what production serves: the same snippet, only root and upstream moved.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.smtp_sink import free_port

PROJECT = Path(__file__).resolve().parent.parent
SNIPPET = PROJECT / "deploy" / "nginx" / "cocreatehumanity-site.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class LocalNginx:
    """nginx serving `site_dir` with the deploy snippet, /forms to `forms_port`, or to the
    upstream block of the file `upstream` (deploy/nginx/cocreatehumanity-upstream.conf's place)."""

    def __init__(self, workdir: Path, site_dir: Path, forms_port: int | None = None, port: int | None = None,
                 upstream: Path | None = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.conf = self.workdir / "nginx.conf"
        snippet = SNIPPET.read_text().replace("/srv/cocreatehumanity/site", str(Path(site_dir).resolve()))
        (self.workdir / "site.conf").write_text(snippet)
        temp = "\n".join(
            f"  {name}_temp_path {self.workdir / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        upstream_block = (f"include {upstream};" if upstream
                          else f"upstream forms_service {{ server 127.0.0.1:{forms_port or free_port()}; }}")
        self.conf.write_text(
            f"""{user}daemon off;
worker_processes 1;
pid {self.workdir / 'nginx.pid'};
error_log {self.workdir / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
{temp}
  {upstream_block}
  server {{
    listen 127.0.0.1:{self.port};
    include {self.workdir / 'site.conf'};
  }}
}}
"""
        )
        self.process: subprocess.Popen | None = None

    def check(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the configuration."""
        return subprocess.run([NGINX, "-t", "-c", str(self.conf), "-p", str(self.workdir)], capture_output=True, text=True)

    def start(self) -> LocalNginx:
        log = open(self.workdir / "stderr.log", "wb")
        self.process = subprocess.Popen([NGINX, "-c", str(self.conf), "-p", str(self.workdir)], stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError((self.workdir / "stderr.log").read_text())

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

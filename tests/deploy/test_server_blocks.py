"""deploy/nginx/cocreatehumanity.conf as shipped, running: HTTP to HTTPS, the bare domain to www (the one
origin the forms accept), certbot's challenge answered on port 80, and nginx -t only once the
certificate exists (the first-install order of deploy/README.md)."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme

from harness.nginx import NGINX, PROJECT, SNIPPET, UPSTREAM_FILE, listening
from harness.smtp_sink import free_port

SERVER_FILE = PROJECT / "deploy" / "nginx" / "cocreatehumanity.conf"
LIVE = "/etc/letsencrypt/live/www.cocreatehumanity.org/"
NAMES = ("www.cocreatehumanity.org", "cocreatehumanity.org")


class ServerBlocks:
    """nginx running the shipped server file, with only paths and ports made local."""

    def __init__(self, workdir: Path, site_dir: Path, certificates: Path):
        self.workdir, self.http_port, self.https_port = workdir, free_port(), free_port()
        self.webroot = workdir / "webroot"
        (self.webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
        (workdir / "site.conf").write_text(SNIPPET.read_text().replace("/srv/cocreatehumanity/site", str(site_dir)))
        server = SERVER_FILE.read_text().replace(LIVE, f"{certificates}/").replace("/var/www/html", str(self.webroot))
        server = server.replace("/etc/nginx/snippets/cocreatehumanity-site.conf", str(workdir / "site.conf"))
        server = server.replace("/etc/nginx/snippets/cocreatehumanity-upstream.conf", str(UPSTREAM_FILE))
        server = re.sub(r"\n\s*listen \[::\]:[^\n]*", "", server)
        server = re.sub(r"listen 80;", f"listen 127.0.0.1:{self.http_port};", server)
        server = re.sub(r"listen 443 ssl", f"listen 127.0.0.1:{self.https_port} ssl", server)
        (workdir / "server.conf").write_text(server)
        temp = "".join(
            f"{name}_temp_path {workdir / name}; " for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(
            f"{user}daemon off;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'};\nevents {{}}\n"
            f"http {{ include /etc/nginx/mime.types; access_log off; {temp}include {workdir / 'server.conf'}; }}\n"
        )
        self.process: subprocess.Popen | None = None

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [NGINX, "-t", "-c", str(self.conf), "-p", str(self.workdir)], capture_output=True, text=True
        )

    def __enter__(self) -> ServerBlocks:
        self.process = subprocess.Popen([NGINX, "-c", str(self.conf), "-p", str(self.workdir)])
        if not listening(self.https_port):
            self.__exit__()
            raise RuntimeError("nginx did not start")
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def exchange(port: int, host: str, path: str, tls: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET naming `host` (in SNI too, over TLS): status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        connection = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while data := connection.recv(65536):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    return int(status_line.split()[1]), dict(line.split(": ", 1) for line in lines), body


@pytest.fixture
def blocks(deployed, tmp_path):
    ca = trustme.CA()
    certificates = tmp_path / "live"
    certificates.mkdir()
    issued = ca.issue_cert(*NAMES)
    issued.private_key_pem.write_to_path(str(certificates / "privkey.pem"))
    (certificates / "fullchain.pem").write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    running = ServerBlocks(tmp_path, deployed.site_dir.resolve(), certificates)
    running.tls = ssl.create_default_context()
    ca.configure_trust(running.tls)
    with running:
        yield running


def test_nginx_t_fails_before_the_certificate_exists_and_passes_after(deployed, tmp_path):
    """Why the guide obtains the certificate first: the TLS server blocks name its files."""
    missing = ServerBlocks(tmp_path, deployed.site_dir.resolve(), tmp_path / "no-certificate-yet")
    check = missing.check()
    assert check.returncode != 0 and "fullchain.pem" in check.stderr


@pytest.mark.parametrize("host", NAMES)
def test_plain_http_goes_to_https_www(blocks, host):
    status, headers, _ = exchange(blocks.http_port, host, "/en/support.html?x=1")
    assert status == 301 and headers["Location"] == "https://www.cocreatehumanity.org/en/support.html?x=1"


def test_the_bare_domain_over_https_goes_to_www(blocks):
    status, headers, _ = exchange(blocks.https_port, "cocreatehumanity.org", "/support.html", blocks.tls)
    assert status == 301 and headers["Location"] == "https://www.cocreatehumanity.org/support.html"


def test_www_over_https_serves_the_site(blocks):
    status, headers, body = exchange(blocks.https_port, "www.cocreatehumanity.org", "/", blocks.tls)
    assert status == 200 and b'<html lang="fr"' in body and "Strict-Transport-Security" in headers


def test_certbot_renewals_get_their_challenge_on_port_80(blocks):
    (blocks.webroot / ".well-known" / "acme-challenge" / "token-123").write_text("token-123.thumbprint")
    status, _, body = exchange(blocks.http_port, "cocreatehumanity.org", "/.well-known/acme-challenge/token-123")
    assert status == 200 and body == b"token-123.thumbprint"

"""The deploy/ configuration running for real: nginx in front of the built site and of forms_service."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import request
from werkzeug.serving import make_server

from forms_service.delivery import start_delivery
from forms_service.static_site import build_site
from harness.nginx import LocalNginx


@dataclass
class Deployed:
    """nginx serving the site built for its address, with /forms going to `forms_port`.

    `held`: the forms port, bound for the whole run and never listened on, so that no other server of the
    run is given it (a port looked up free and left so once was: nginx then reached another test's
    gunicorn). Whatever serves /forms binds it beside (SO_REUSEADDR); with nothing there, a connection is
    refused, as with no service at all.
    """

    nginx: LocalNginx
    site_dir: Path
    forms_port: int
    held: socket.socket

    def stop(self) -> None:
        self.nginx.stop()
        self.held.close()

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def origin(self) -> str:
        return self.nginx.url.rstrip("/")

    def pages(self) -> list[str]:
        """Site-relative paths of every HTML page a reader can land on, 404 pages included."""
        return sorted(
            path.relative_to(self.site_dir).as_posix()
            for path in self.site_dir.rglob("*.html")
            if not path.relative_to(self.site_dir).as_posix().startswith(("assets/", "search/"))
        )


def deploy(tmp_path_factory, name: str, **nginx_options) -> Deployed:
    """The project's site behind the deploy nginx snippet, built with nginx's loopback URL as site_url."""
    site_dir = tmp_path_factory.mktemp(f"{name}-site")
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port-0 bind never shares it
    held.bind(("127.0.0.1", 0))
    forms_port = held.getsockname()[1]
    nginx = LocalNginx(tmp_path_factory.mktemp(name), site_dir, forms_port=forms_port, **nginx_options)
    build = build_site(site_dir, nginx.url)
    assert build.returncode == 0, build.stderr
    nginx.start()
    return Deployed(nginx, site_dir, forms_port, held)


@pytest.fixture(scope="session")
def deployed(tmp_path_factory) -> Deployed:
    """The site behind the deploy nginx, /forms to the port `forms_upstream` serves the service on."""
    site = deploy(tmp_path_factory, "nginx")
    yield site
    site.stop()


@pytest.fixture
def forms_upstream(make_app, deployed):
    """The real service as nginx's upstream (one trusted proxy), relaying to the shared aiosmtpd server.

    Yields the client addresses the service saw, one per request, to check
    what ProxyFix makes of X-Forwarded-For.
    """
    app = make_app(
        SITE_URL=deployed.origin, ALLOWED_ORIGINS=[deployed.origin], PROXY_COUNT=1, SITE_DIR=str(deployed.site_dir)
    )  # as a release's service reads its own built site
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.remote_addr))
    server = make_server("127.0.0.1", deployed.forms_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deliverer = start_delivery(app)
    yield seen
    server.shutdown()
    server.server_close()
    deliverer.stop()


class StalledService:
    """A forms upstream that has hung: it takes each request whole and never answers.

    `received` is set once a whole request (headers and body) has come in, so a
    test can look at nginx while it is still waiting for the answer.
    """

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.received = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed by stop()
                return
            self.held.append(connection)
            threading.Thread(target=self._take, args=(connection,), daemon=True).start()

    def _take(self, connection: socket.socket) -> None:
        """Read one request to its last byte, then hold the connection and say nothing."""
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < self._length(data):
            chunk = connection.recv(65536)
            if not chunk:  # nginx gave up first
                return
            data += chunk
        self.received.set()

    @staticmethod
    def _length(data: bytes) -> int:
        """The body length the request's head announces (nginx sends it for every buffered body)."""
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", data.split(b"\r\n\r\n", 1)[0])
        return int(length.group(1)) if length else 0

    def stop(self) -> None:
        """Stop listening at once (closing alone would wait for the blocked accept()); once is enough."""
        if self.listener.fileno() != -1:
            self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.fixture(scope="session")
def unavailable(tmp_path_factory) -> Deployed:
    """The site behind the deploy nginx, with no forms service running: /forms answers 502.

    nginx's wait for an answer is cut from the snippet's 60 s to 3 s, so that a
    stalled service (the `stalled` fixture) gets its 504 quickly.
    """
    site = deploy(tmp_path_factory, "unavailable", read_timeout="3s")
    yield site
    site.stop()


@pytest.fixture
def stalled(unavailable) -> StalledService:
    """A hung service behind `unavailable`'s nginx, for one test: /forms answers 504."""
    service = StalledService(unavailable.forms_port)
    yield service
    service.stop()

"""The deploy/ configuration running for real: nginx in front of the built site and of forms_service."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import request
from werkzeug.serving import make_server

from forms_service.delivery import start_delivery
from forms_service.static_site import build_site
from tests.nginx import LocalNginx
from tests.smtp_sink import free_port


@dataclass
class Deployed:
    """nginx serving the site built for its address, with /forms going to `forms_port`."""

    nginx: LocalNginx
    site_dir: Path
    forms_port: int

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


@pytest.fixture(scope="session")
def deployed(tmp_path_factory) -> Deployed:
    """The project's site behind the deploy nginx snippet, built with nginx's loopback URL as site_url."""
    site_dir = tmp_path_factory.mktemp("nginx-site")
    forms_port = free_port()
    nginx = LocalNginx(tmp_path_factory.mktemp("nginx"), site_dir, forms_port=forms_port)
    build = build_site(site_dir, nginx.url)
    assert build.returncode == 0, build.stderr
    nginx.start()
    yield Deployed(nginx, site_dir, forms_port)
    nginx.stop()


@pytest.fixture
def forms_upstream(make_app, deployed):
    """The real service as nginx's upstream (one trusted proxy), relaying to the shared aiosmtpd server.

    Yields the client addresses the service saw, one per request, to check
    what ProxyFix makes of X-Forwarded-For.
    """
    app = make_app(SITE_URL=deployed.origin, ALLOWED_ORIGINS=[deployed.origin], PROXY_COUNT=1,
                   SITE_DIR=str(deployed.site_dir))  # as a release's service reads its own built site
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.remote_addr))
    server = make_server("127.0.0.1", deployed.forms_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deliverer = start_delivery(app)
    yield seen
    server.shutdown()
    server.server_close()
    deliverer.stop()

"""The built site, served on loopback as a static host would, and a real browser."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from forms_service.static_site import build_site, static_site

ROOT = Path(__file__).resolve().parents[2]


class ServedSite:
    """A built site and the loopback address it is served at."""

    def __init__(self, site_dir: Path, build, url: str):
        self.dir = site_dir
        self.build = build
        self.url = url

    def pages(self) -> list[str]:
        """Site-relative paths of every HTML page, 404 pages included."""
        return sorted(p.relative_to(self.dir).as_posix() for p in self.dir.rglob("*.html"))


def serve(app):
    """Serve a WSGI app on a free loopback port in a thread; returns (server, url)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> ServedSite:
    """The project's site, built once with site_url set to where it is served."""
    site_dir = tmp_path_factory.mktemp("site")
    server, url = serve(static_site(site_dir))
    build = build_site(site_dir, url)
    assert build.returncode == 0, build.stderr
    yield ServedSite(site_dir, build, url)
    server.shutdown()


@pytest.fixture
def page(kept_page, site):
    """A new page for one test, in a context kept for the site (tests/conftest.py, KeptContexts)."""
    return kept_page(site.url)

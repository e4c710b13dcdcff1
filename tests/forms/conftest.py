"""The built site and the forms service on one loopback origin, as production serves them.

The site is built once per session with SITE_URL set to that origin; each
test gets a fresh app (aimed at the shared aiosmtpd) mounted under /forms.
Site responses carry the deploy Content-Security-Policy, so the browser
enforces it: an inline script or style of ours would fail the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forms_service.devserver import combined
from forms_service.static_site import build_site, static_site
from harness.nginx import SNIPPET
from tests.site.conftest import serve

CSP = re.search(r'set \$csp "([^"]+)";', SNIPPET.read_text()).group(1)


class Origin:
    """The site and whichever forms app a test installs, on one loopback origin."""

    def __init__(self, site_dir: Path):
        self.dir = site_dir
        self.forms = None
        self.url = ""

    def wsgi(self):
        """The combined WSGI app; /forms goes to the app installed at request time."""

        def forms(environ, start_response):
            return self.forms(environ, start_response)

        return combined(_with_csp(static_site(self.dir)), forms)

    @property
    def name(self) -> str:
        """The origin as browsers send it in the Origin header (no trailing slash)."""
        return self.url.rstrip("/")


def _with_csp(app):
    """Serve the site with the Content-Security-Policy of deploy/nginx."""

    def wrapped(environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, ("Content-Security-Policy", CSP)], exc_info)

        return app(environ, start)

    return wrapped


@pytest.fixture(scope="session")
def origin(tmp_path_factory) -> Origin:
    """Serve first (the port is only known then), then build the site for that address."""
    served = Origin(tmp_path_factory.mktemp("forms-site"))
    server, served.url = serve(served.wsgi())
    build = build_site(served.dir, served.url)
    assert build.returncode == 0, build.stderr
    yield served
    server.shutdown()


@pytest.fixture
def forms_app(origin, make_app):
    """The forms service for this test, answering on the site's origin."""
    app = make_app(SITE_URL=origin.name, ALLOWED_ORIGINS=[origin.name], SITE_DIR=str(origin.dir))
    origin.forms = app
    yield app
    origin.forms = None

"""Shared fixtures: real SMTP servers on loopback and a configured app.

Each fixture says what it yields in its docstring.
"""

from __future__ import annotations

import json
import sys

import pytest
import trustme

from forms_service.app import create_app
from harness.browser import CHROMIUM, CHROMIUM_ARGS
from harness.settings import service_settings
from harness.smtp_sink import SmtpSink

# pytest caches the test modules it rewrites (for its assertions) even where PYTHONDONTWRITEBYTECODE is
# set, as on these machines: each xdist worker would otherwise rewrite them all again, 2 s of CPU each.
# The servers the tests start still inherit the setting, as the service never writes into its release.
sys.dont_write_bytecode = False


@pytest.fixture(scope="session")
def smtp_ca() -> trustme.CA:
    """The test CA the service is told to trust (FORMS_MAIL_CA_FILE)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def smtp_ca_file(smtp_ca, tmp_path_factory) -> str:
    """Path of the trusted test CA certificate in PEM form."""
    path = tmp_path_factory.mktemp("ca") / "smtp-ca.pem"
    smtp_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def untrusted_ca() -> trustme.CA:
    """A second CA nobody trusts: certificates from it must be refused."""
    return trustme.CA()


@pytest.fixture(scope="session")
def _shared_smtp_server(smtp_ca):
    """One STARTTLS + AUTH server for the whole session (starting one costs time)."""
    sink = SmtpSink(smtp_ca, mode="starttls", auth=True).start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_server(_shared_smtp_server) -> SmtpSink:
    """The trusted STARTTLS + AUTH server, emptied before and after each test."""
    _shared_smtp_server.handler.reset()
    yield _shared_smtp_server
    _shared_smtp_server.handler.reset()


@pytest.fixture
def smtp_sink_factory(smtp_ca):
    """Start extra servers for one test: factory(mode=..., auth=..., ca=...) -> SmtpSink."""
    started: list[SmtpSink] = []

    def start(*, mode: str = "starttls", auth: bool = False, ca: trustme.CA | None = None) -> SmtpSink:
        sink = SmtpSink(ca or smtp_ca, mode=mode, auth=auth).start()
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


@pytest.fixture
def untrusted_smtp_server(smtp_sink_factory, untrusted_ca) -> SmtpSink:
    """A STARTTLS server whose certificate comes from the untrusted CA."""
    return smtp_sink_factory(ca=untrusted_ca)


@pytest.fixture
def app_config(smtp_server, smtp_ca_file, tmp_path) -> dict:
    """Complete test settings (keys without the FORMS_ prefix) aimed at smtp_server."""
    return service_settings(
        smtp_server.mail_config(), smtp_ca_file, tmp_path / "data", TESTING=True, ALLOWED_ORIGINS=["https://site.test"]
    )


@pytest.fixture
def make_app(app_config):
    """Factory: make_app(**overrides) -> Flask app built from app_config plus overrides."""

    def build(**overrides):
        return create_app({**app_config, **overrides})

    return build


@pytest.fixture
def app(make_app):
    """The service configured for tests, relaying to smtp_server."""
    return make_app()


@pytest.fixture
def client(app):
    """Flask test client of `app`."""
    return app.test_client()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download exists here).

    Defined once for the whole session: Playwright's sync API cannot run two
    instances side by side, so each test folder must not start its own.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class KeptContexts:
    """Browser contexts kept for the session, one per set of options, each with a page left open on the
    site the tests visit. A test's page opened in such a context shares that page's renderer process:
    about 0.5 s of Chromium's CPU per page, against 1.3 s for a page in a new context (a new renderer
    starts, compiles the site's scripts again and settles). A new page is still a new tab: its own
    sessionStorage, listeners, routes and network conditions.

    What a page does must not depend on which tests ran before it in the same context: what the context
    keeps for a site is cleared as a page is handed out (cookies, localStorage, where Material keeps the
    reader's palette), and service workers are blocked (the offline worker has tests of its own, in
    contexts of their own).
    """

    def __init__(self, browser):
        self.browser = browser
        self.kept = {}

    def new_page(self, site_url: str, **options):
        """A new page in the kept context with these options (Playwright's new_context arguments), which
        keeps a page open on site_url."""
        key = json.dumps([site_url, options], sort_keys=True)
        if key not in self.kept:
            context = self.browser.new_context(service_workers="block", **options)
            kept = context.new_page()
            kept.goto(site_url + "robots.txt")
            self.kept[key] = kept
        kept = self.kept[key]
        kept.context.clear_cookies()
        kept.evaluate("localStorage.clear()")
        return kept.context.new_page()


@pytest.fixture(scope="session")
def kept_contexts(browser) -> KeptContexts:
    """KeptContexts of the session's browser."""
    kept = KeptContexts(browser)
    yield kept
    for page in kept.kept.values():
        page.context.close()


@pytest.fixture
def kept_page(kept_contexts):
    """kept_page(site_url, **options) -> a new page in a kept context (KeptContexts), closed after the test
    whatever its outcome."""
    pages = []

    def open_(site_url: str, **options):
        pages.append(kept_contexts.new_page(site_url, **options))
        return pages[-1]

    yield open_
    for page in pages:
        page.close()

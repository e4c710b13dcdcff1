"""A flood of uploads never locks out a request for help: FORMS_SPOOL_MAX_BYTES as production runs it,
`gunicorn forms_service.wsgi:app --workers 3`, with the mail server down so that nothing drains."""

from __future__ import annotations

import html
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from urllib3 import encode_multipart_formdata

from forms_service import i18n
from forms_service.messages import SPOOL_FULL
from harness import samples
from harness.flood import until_taken
from harness.gunicorn import DOCUMENTED_OPTIONS, Gunicorn
from harness.settings import JSON, OPERATOR, SITE, service_settings, support_form, volunteer_form
from harness.smtp_sink import SmtpSink

MEGABYTE = 1024 * 1024
MAX_BYTES, RESERVE_BYTES = 24 * MEGABYTE, 4 * MEGABYTE
APPLICATIONS = 24  # of 1 MB each (about 1.8 MB sealed): twice what the bound less the reserve holds


@pytest.fixture(scope="module")
def server(smtp_ca, smtp_ca_file, tmp_path_factory):
    down = SmtpSink(smtp_ca)  # never started: every delivery fails, the spool only grows
    data_dir = tmp_path_factory.mktemp("bounds") / "data"
    settings = service_settings(
        down.mail_config(), smtp_ca_file, data_dir, SPOOL_MAX_BYTES=MAX_BYTES, SPOOL_RESERVE_BYTES=RESERVE_BYTES
    )
    with Gunicorn(settings=settings, options=DOCUMENTED_OPTIONS) as running:
        running.spool_path = Path(data_dir) / "spool.sqlite3"
        yield running


def used_bytes(path: Path) -> int:
    """Pages in use in the spool file, as the bound counts them (read by another process: this one)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (used,) = db.execute(
            "SELECT (page_count - freelist_count) * page_size"
            " FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
        ).fetchone()
    db.close()
    return used


def apply(server: Gunicorn, language: str, headers: dict) -> requests.Response:
    """A volunteer application with a 1 MB resumé, as a browser encodes it."""
    fields = list(volunteer_form(resume=None, lang=language).items())
    fields.append(("resume", ("cv.pdf", samples.padded_pdf(MEGABYTE), "application/pdf")))
    body, content_type = encode_multipart_formdata(fields)
    return until_taken(  # sent again while the upload slots are all taken, as the site's script does
        lambda: requests.post(
            f"http://127.0.0.1:{server.port}/forms/volunteer",
            data=body,
            timeout=60,
            headers={**SITE, **headers, "Content-Type": content_type},
            allow_redirects=False,
        )
    )


def test_a_flood_of_uploads_past_the_bound_still_lets_a_request_for_help_in(server):
    with ThreadPoolExecutor(6) as pool:  # more clients than workers: all three accept at once
        languages = [("fr", "en")[number % 2] for number in range(APPLICATIONS)]
        answers = list(zip(languages, pool.map(lambda language: apply(server, language, JSON), languages), strict=True))
    statuses = [response.status_code for _, response in answers]
    assert set(statuses) == {202, 503} and statuses.count(202) >= 8, statuses
    # The bound held though three workers accepted at once: each counts inside its write transaction.
    assert used_bytes(server.spool_path) <= MAX_BYTES - RESERVE_BYTES
    for language, response in answers:
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "3600"
            assert response.json() == {"ok": False, "error": i18n.catalogue(language).gettext(SPOOL_FULL)}
    for language in ("fr", "en"):
        help_request = requests.post(
            f"http://127.0.0.1:{server.port}/forms/support",
            timeout=30,
            data=support_form(lang=language),
            headers={**SITE, **JSON},
        )
        assert help_request.status_code == 202
    health = requests.get(f"http://127.0.0.1:{server.port}/forms/healthz", headers=OPERATOR, timeout=10)
    body = health.json()
    assert health.status_code == 200 and body["ok"] is True  # support requests still go in
    assert body["status"] == "WARNING"
    assert any("FORMS_SPOOL_MAX_BYTES" in line and "support" in line for line in body["reasons"])


def test_the_refusal_page_says_so_in_the_submitters_language(server):
    """Without JavaScript: the HTML page, in French, with Retry-After. The spool is full after the flood;
    when this test runs alone, or room was left, applications fill it first (each accepted one is
    redirected to the thank-you page)."""
    for _ in range(APPLICATIONS):
        response = apply(server, "fr", {"Accept": "text/html"})
        if response.status_code != 303:
            break
    assert response.status_code == 503 and response.headers["Retry-After"] == "3600"
    assert html.escape(i18n.catalogue("fr").gettext(SPOOL_FULL)) in response.text

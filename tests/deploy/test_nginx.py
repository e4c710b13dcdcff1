"""deploy/nginx as production runs it: the built site, its headers, and /forms in front of the real service.

nginx is Debian's, run unprivileged on loopback with the very snippet
production includes (harness/nginx.py moves only root and upstream).
/forms with the service down or hung: test_nginx_unavailable.py.
"""

from __future__ import annotations

import html
import http.client
import io
import re
from urllib.parse import urlsplit

import pytest
import requests

from forms_service import i18n
from forms_service.fields import FORMS, LONG_TEXT_MAX, RESUME_MAX_BYTES
from forms_service.form_model import MEGABYTE
from forms_service.messages import BACK_KEEPS, failure_message
from harness import samples
from harness.nginx import PROJECT
from harness.settings import support_form, volunteer_form
from tests.deploy.helpers import multipart

SERVER_FILE = PROJECT / "deploy" / "nginx" / "cocreatehumanity.conf"
HASHED = re.compile(r"\.[0-9a-f]{8}\.min\.(css|js)$")  # Material's content-hashed bundles
YEAR = 365 * 24 * 3600
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=63072000",
}
NGINX_BODY_CAP = 16 * MEGABYTE  # "sane": enough for any honest form post, not an open buffer


def get(deployed, path: str, **headers) -> requests.Response:
    return requests.get(deployed.url + path, headers=headers, timeout=10, allow_redirects=False)


def test_snippet_passes_nginx_t(deployed):
    check = deployed.nginx.check()
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("path", ["", "en/volunteer.html", "assets/stylesheets/identity.css", "en/sitemap.xml"])
def test_text_is_served_compressed(deployed, path):
    response = get(deployed, path, **{"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]


def test_hashed_assets_are_cached_for_a_year_and_pages_are_not(deployed):
    hashed = [path for path in deployed.site_dir.rglob("*") if HASHED.search(path.name)]
    assert {path.suffix for path in hashed} >= {".css", ".js"}
    for path in hashed:
        response = get(deployed, path.relative_to(deployed.site_dir).as_posix())
        assert response.headers["Cache-Control"] == f"max-age={YEAR}", path
        assert response.headers["Content-Security-Policy"]  # `expires` keeps the server's headers
    for path in ("en/index.html", "assets/stylesheets/identity.css"):
        assert get(deployed, path).headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path, lang",
    [
        ("no-such-page.html", "fr"),
        ("deep/missing/", "fr"),
        ("en/no-such-page.html", "en"),
        ("en/deep/missing/", "en"),
        ("zz/not-a-language-folder.html", "fr"),
    ],
)
def test_a_missing_page_is_a_404_in_its_language(deployed, path, lang):
    response = get(deployed, path)
    assert response.status_code == 404
    assert f'<html lang="{lang}"' in response.text
    assert i18n.catalogue(lang).gettext("Page not found") in response.text


@pytest.mark.parametrize("path", ["", "en/support.html", "en/no-such-page.html", "search/search_index.json"])
def test_security_headers_on_every_kind_of_answer(deployed, path):
    headers = get(deployed, path).headers
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy
    assert "Server" not in headers or "nginx/" not in headers["Server"]


def test_forms_are_proxied_and_relayed(deployed, forms_upstream, smtp_server):
    response = requests.post(
        deployed.url + "forms/support",
        files=multipart(support_form()),
        headers={"Origin": deployed.origin},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == deployed.url + "en/support-thanks.html"
    assert response.headers["Cache-Control"] == "no-store"
    received = smtp_server.handler.wait_for(2, timeout=30)
    assert {rcpt for message in received for rcpt in message.rcpt_tos} >= {"support@cch.example.org"}


def test_a_refusal_through_nginx_carries_the_services_headers_only(deployed, forms_upstream):
    """Two Content-Security-Policy headers would both be enforced: the site's would block the
    error page's nonce'd style; and nginx's `expires` would replace the service's no-store."""
    response = requests.post(
        deployed.url + "forms/support",
        files=multipart(support_form(email="not an address")),
        headers={"Origin": deployed.origin},
        timeout=30,
    )
    assert response.status_code == 400
    policies = response.raw.headers.getlist("Content-Security-Policy")
    assert len(policies) == 1 and f"style-src {deployed.origin} 'nonce-" in policies[0]
    # The form given back posts again: its page lets the browser send the Origin (not "null").
    assert response.raw.headers.getlist("Referrer-Policy") == ["same-origin"]
    assert response.headers["Cache-Control"] == "no-store" and "Expires" not in response.headers
    assert response.headers["Strict-Transport-Security"] == SECURITY_HEADERS["Strict-Transport-Security"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_refusal_without_the_script_is_the_sites_page_and_its_stylesheets_load(deployed, forms_upstream, lang):
    """The built form's address, language included, reaches the service through nginx; the page it
    answers links the site's stylesheets, which nginx serves to it."""
    page = (deployed.site_dir / (i18n.language_prefix(lang) + "/support.html").lstrip("/")).read_text()
    action = re.search(r'<form class="cch-form" id="support-form" action="([^"]+)"', page).group(1)
    assert action == f"/forms/support?lang={lang}"
    response = requests.post(
        deployed.origin + action,
        files=multipart(support_form(email="nope", lang=None)),
        headers={"Origin": deployed.origin, "Accept-Language": "ar"},
        timeout=30,
    )
    assert response.status_code == 400
    assert f'<html lang="{lang}"' in response.text and 'id="support-email-error">' in response.text
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', response.text)
    assert stylesheets and all(url.startswith(deployed.url + "assets/") for url in stylesheets)
    for url in stylesheets:
        css = requests.get(url, timeout=10)
        assert (css.status_code, css.headers["Content-Type"].split(";")[0]) == (200, "text/css")


def test_health_check_is_reachable_through_nginx(deployed, forms_upstream):
    response = get(deployed, "forms/healthz")
    assert response.status_code == 200 and response.json()["ok"] is True


def test_nginx_buffers_no_unbounded_body(deployed, forms_upstream):
    """Above the service's cap (whose clear 413 the test below checks) nginx still stops what no
    honest form needs, before the service sees a byte."""
    response = requests.post(
        deployed.url + "forms/volunteer",
        data=b"x" * NGINX_BODY_CAP,
        timeout=60,
        headers={"Origin": deployed.origin, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 413
    assert "<center>nginx</center>" in response.text  # nginx's own page, not the service's


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_6_mb_upload_gets_the_services_413_in_the_pages_language(deployed, forms_upstream, lang):
    form = volunteer_form(lang=lang, resume=(io.BytesIO(samples.padded_pdf(6 * MEGABYTE)), "cv.pdf", "application/pdf"))
    other = "en" if lang == "fr" else "fr"  # the browser's: the form's address says the page's language
    response = requests.post(
        deployed.url + f"forms/volunteer?lang={lang}",
        files=multipart(form),
        timeout=60,
        headers={"Origin": deployed.origin, "Accept-Language": other},
        allow_redirects=False,
    )
    assert response.status_code == 413
    expected = i18n.catalogue(lang).gettext(
        failure_message(413, FORMS["volunteer"]), max_megabytes=RESUME_MAX_BYTES // MEGABYTE, max_length=LONG_TEXT_MAX
    )
    assert expected in html.unescape(response.text)
    assert "nginx" not in response.text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_support_request_too_large_is_told_so_without_a_word_of_a_cv_on_its_own_page(deployed, forms_upstream, lang):
    """Issue 22: 10,000 parts refused with 413 say what is true of the support form, which has no file;
    posted without the script, the answer is that form's page in the site's look (header, crisis line),
    saying that the browser's Back button keeps what was typed."""
    parts = {f"part{index}": (None, "x") for index in range(10_000)}
    response = requests.post(
        deployed.url + f"forms/support?lang={lang}",
        files={**multipart(support_form(lang=None)), **parts},
        headers={"Origin": deployed.origin},
        timeout=60,
        allow_redirects=False,
    )
    assert response.status_code == 413
    catalogue, text = i18n.catalogue(lang), html.unescape(response.text)
    notice = re.search(r'<div class="cch-refused" role="alert">(.*?)</div>', text, re.S).group(1)
    assert catalogue.gettext(failure_message(413, FORMS["support"]), max_length=LONG_TEXT_MAX) in notice
    assert catalogue.gettext(BACK_KEEPS) in notice
    assert not re.search(r"\bCV\b|\bM[Bo]\b", notice), notice
    assert 'class="md-header' in text and 'class="md-typeset cch-crisis-line"' in text and 'href="tel:143"' in text


def test_the_service_sees_the_real_client_not_a_forged_header(deployed, forms_upstream):
    """nginx appends the address it saw; FORMS_PROXY_COUNT=1 makes the service trust exactly that one.

    The client connects from 127.0.0.2 while nginx reaches the service from
    127.0.0.1, so the service can only know 127.0.0.2 through the header.
    """
    address = urlsplit(deployed.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10, source_address=("127.0.0.2", 0))
    connection.request("GET", "/forms/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert connection.getresponse().status == 200
    connection.close()
    assert forms_upstream == ["127.0.0.2"]

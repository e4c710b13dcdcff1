"""HTTP-level refusals: size (413, over a real socket), encoding (415), method (405),
origin (403), rate (429), security headers on every answer."""

from __future__ import annotations

import hmac
import http.client
import io
import threading

import pytest
from werkzeug.serving import make_server

from forms_service import health
from forms_service.fields import RESUME_MAX_BYTES
from forms_service.spool.keys import ensure_key_file
from harness import samples
from harness.settings import JSON, OPERATOR, SITE, TEST_HEALTH_TOKEN, support_form, volunteer_form
from tests.service.helpers import deliver, post
from tests.spool.conftest import corrupt_outgoing_table


@pytest.fixture
def live_server(app):
    """The app behind Werkzeug's real threaded HTTP server on a loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)


def raw_upload(port: int, size: int, accept: str) -> http.client.HTTPResponse:
    """Send a multipart upload of `size` bytes with http.client, as a browser would."""
    boundary = "----b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="resume"; filename="cv.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="lang"\r\n\r\nen\r\n--{boundary}--\r\n'.encode()
    body = head + samples.padded_pdf(size) + tail
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request(
        "POST",
        "/forms/volunteer",
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": accept,
            "Origin": "https://site.test",
            "Accept-Language": "en",
        },
    )
    return connection.getresponse()


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_oversize_upload_gets_a_clear_413_not_a_reset(live_server, smtp_server, accept):
    response = raw_upload(live_server.server_port, 6 * 1024 * 1024 + 123, accept)
    body = response.read().decode()
    assert response.status == 413
    assert "at most 5 MB" in body
    if accept == "application/json":
        assert body.startswith('{"error":') or '"ok":false' in body
    assert smtp_server.messages == []


def test_upload_just_under_the_cap_is_accepted_over_a_real_socket(live_server, smtp_server):
    response = raw_upload(live_server.server_port, RESUME_MAX_BYTES, "application/json")
    response.read()
    assert response.status == 400  # the file is fine; the other required fields are missing
    assert smtp_server.messages == []


def test_oversize_multipart_text_part_is_413_in_language(client):
    data = volunteer_form(motivation="x" * 400_000, lang="fr")
    response = post(client, "volunteer", data, {**JSON, "Accept-Language": "fr"})
    assert response.status_code == 413
    assert "trop volumineux" in response.get_json()["error"]


def test_long_urlencoded_text_is_a_field_error(client):
    response = post(client, "support", support_form(message="x" * 400_000), JSON)
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["message"]


def test_too_many_parts_is_413(client):
    data = {f"f{index}": "x" for index in range(60)}
    response = client.post(
        "/forms/volunteer", data={**data, "name": "x"}, headers=JSON, content_type="multipart/form-data"
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"email": "a@example.org", "consent": true}'),
        ("text/plain", b"email=a@example.org"),
        ("application/xml", b"<x/>"),
    ],
)
def test_non_form_bodies_get_415(client, content_type, body):
    response = client.post(
        "/forms/support", data=body, headers={**JSON, "Content-Type": content_type, "Accept-Language": "en"}
    )
    assert response.status_code == 415
    assert response.get_json() == {"ok": False, "error": "Please send the form from the website, as a normal web form."}


def test_missing_content_type_gets_415(client):
    response = client.post("/forms/support", headers=JSON)
    assert response.status_code == 415


@pytest.mark.parametrize("path", ["/forms/volunteer", "/forms/support"])
def test_get_on_a_form_endpoint_is_405_with_a_clear_page(client, path):
    response = client.get(path, headers={"Accept-Language": "fr"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    page = response.get_data(as_text=True)
    assert "Cette adresse ne reçoit que les formulaires" in page
    assert '<html lang="fr">' in page


def test_unknown_path_is_404_in_language(client):
    response = client.get("/forms/nothing", headers={**JSON, "Accept-Language": "en"})
    assert response.status_code == 404
    assert response.get_json() == {"ok": False, "error": "This page does not exist."}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://site.test.evil.example"},
        {"Referer": "https://evil.example/page"},
    ],
)
def test_foreign_origin_is_403(client, smtp_server, headers):
    response = client.post("/forms/support", data=support_form(), headers={**JSON, **headers, "Accept-Language": "en"})
    assert response.status_code == 403
    assert response.get_json() == {"ok": False, "error": "This form can only be sent from the association's website."}
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Origin nor Referer: not a browser acting for someone else
        {"Referer": "https://site.test/en/support.html"},
        {"Origin": "HTTPS://SITE.TEST"},
    ],
)
def test_own_origin_or_none_is_accepted(client, smtp_server, headers):
    response = client.post("/forms/support", data=support_form(), headers={**JSON, **headers})
    assert response.status_code == 202


def test_rate_limit_answers_429_in_language(make_app, smtp_server):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2 per minute").test_client()
    codes = [post(client, "support", support_form(), JSON).status_code for _ in range(2)]
    assert codes == [202, 202]
    limited = post(client, "support", support_form(), {**JSON, "Accept-Language": "en"})
    assert limited.status_code == 429
    assert limited.get_json() == {
        "ok": False,
        "error": "Too many attempts from your connection. Please try again later, or write to us at "
        "info@cocreatehumanity.org.",
    }
    response = post(client, "support", support_form(), {"Accept-Language": "fr"})
    assert response.status_code == 429
    assert "Trop de tentatives" in response.get_data(as_text=True)
    other_form = post(client, "volunteer", volunteer_form(), JSON)
    assert other_form.status_code == 429  # one budget for both forms
    assert client.get("/forms/healthz").status_code == 200


@pytest.mark.parametrize(
    ("lang", "accept_language", "expected"),
    [
        ("en", "fr", "Too many attempts"),
        ("fr", "en", "Trop de tentatives"),
        (None, "en", "Too many attempts"),  # no page language anywhere: the browser's
    ],
)
def test_a_429_speaks_the_language_of_the_page_that_posted(make_app, smtp_server, lang, accept_language, expected):
    """Flask-Limiter refuses before the body (and its `lang` field) is read: the form's address says the
    page's language (hooks/forms.py renders action="/forms/<name>?lang=<page language>")."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute").test_client()
    assert post(client, "support", support_form(), JSON).status_code == 202
    query = f"?lang={lang}" if lang else ""
    response = client.post(
        f"/forms/support{query}", data=support_form(lang=lang), headers={**SITE, "Accept-Language": accept_language}
    )
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert expected in page and f'<html lang="{lang or accept_language}">' in page


def test_the_form_field_lang_comes_before_the_address_lang(client, smtp_server):
    response = post(client, "support?lang=fr", support_form(lang="en"))
    assert response.headers["Location"] == "https://site.test/en/support-thanks.html"


def test_rate_limit_is_per_client(make_app, smtp_server):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute").test_client()
    first = post(client, "support", support_form(), JSON, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    second = post(client, "support", support_form(), JSON, environ_base={"REMOTE_ADDR": "192.0.2.2"})
    assert (first.status_code, second.status_code) == (202, 202)


def assert_hardened(response) -> None:
    """The headers every answer carries, whatever its status."""
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    ("status", "method", "path", "kwargs"),
    [
        (200, "get", "/forms/healthz", {}),
        (202, "post", "/forms/support", {"data": support_form(), "headers": JSON}),
        (303, "post", "/forms/support", {"data": support_form()}),
        (400, "post", "/forms/support", {"data": {"email": "bad"}}),
        (403, "post", "/forms/support", {"data": support_form(), "headers": {"Origin": "https://evil.example"}}),
        (404, "get", "/nowhere", {}),
        (405, "get", "/forms/volunteer", {}),
        (413, "post", "/forms/volunteer", {"data": volunteer_form(motivation="x" * 400_000)}),
        (415, "post", "/forms/support", {"data": b"{}", "content_type": "application/json"}),
    ],
)
def test_security_headers_on_every_response(client, smtp_server, status, method, path, kwargs):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert_hardened(response)


def test_security_headers_on_429_500_and_503(make_app, smtp_server, monkeypatch):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute", PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    assert client.post("/forms/support", data=support_form()).status_code == 303
    limited = client.post("/forms/support", data=support_form())
    assert limited.status_code == 429
    assert_hardened(limited)
    spool = app.extensions["forms_spool"]
    spool._connection().execute("PRAGMA query_only = ON")  # the spool refuses every write now
    unavailable = client.get("/forms/healthz")
    assert unavailable.status_code == 503
    assert_hardened(unavailable)
    monkeypatch.setattr("forms_service.views.validate", lambda *args: 1 / 0)
    broken = client.post("/forms/support", data=support_form(), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert broken.status_code == 500
    assert_hardened(broken)


def test_healthz_answers_503_when_the_spool_cannot_be_written(app):
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = ON")
    public = app.test_client().get("/forms/healthz")
    assert (public.status_code, public.get_json()) == (503, {"ok": False})
    operator = app.test_client().get("/forms/healthz", headers=OPERATOR)
    assert (operator.status_code, operator.get_json()) == (
        503,
        {
            "ok": False,
            "status": "CRITICAL",
            "reasons": ["spool not writable (OperationalError)"],
            "spool": {"depth": 0, "dead": 0, "oldest_age_seconds": None},
        },
    )


def test_public_healthz_says_only_ok_while_the_operator_sees_a_request_waiting(client):
    """Depth and age would tell a watcher that someone has just asked for help (test apps run
    no delivery thread: what is accepted waits in the spool)."""
    before = client.get("/forms/healthz")
    assert client.post("/forms/support", data=support_form(), headers={**SITE, **JSON}).status_code == 202
    after = client.get("/forms/healthz")
    assert (before.status_code, before.get_data()) == (after.status_code, after.get_data()) == (200, b'{"ok":true}\n')
    spool = client.get("/forms/healthz", headers=OPERATOR).get_json()["spool"]
    assert (spool["depth"], spool["dead"]) == (2, 0) and spool["oldest_age_seconds"] >= 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {TEST_HEALTH_TOKEN}x"},
        {"Authorization": f"Bearer {TEST_HEALTH_TOKEN[:-1]}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {TEST_HEALTH_TOKEN}"},
        {"Authorization": TEST_HEALTH_TOKEN},
        {"X-Health-Token": TEST_HEALTH_TOKEN},
        {"Authorization": "Bearer tökén"},
    ],
)
def test_healthz_without_the_right_token_gets_the_public_answer(client, headers):
    response = client.get("/forms/healthz", headers=headers)
    assert (response.status_code, response.get_json()) == (200, {"ok": True})


def test_a_token_in_the_query_string_is_ignored(client):
    """Tokens in URLs end up in logs: only the Authorization header counts."""
    response = client.get(f"/forms/healthz?token={TEST_HEALTH_TOKEN}&access_token={TEST_HEALTH_TOKEN}")
    assert response.get_json() == {"ok": True}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_operator_token_shows_the_figures(client, scheme):
    response = client.get("/forms/healthz", headers={"Authorization": f"{scheme} {TEST_HEALTH_TOKEN}"})
    assert response.status_code == 200
    assert response.get_json() == {
        "ok": True,
        "status": "OK",
        "reasons": [],
        "spool": {"depth": 0, "dead": 0, "oldest_age_seconds": None},
    }


def test_without_a_configured_token_no_header_shows_the_figures(make_app):
    client = make_app(HEALTH_TOKEN=None).test_client()
    for headers in ({}, OPERATOR, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        assert client.get("/forms/healthz", headers=headers).get_json() == {"ok": True}


def test_the_token_is_compared_in_constant_time(client, monkeypatch):
    compared = []
    constant_time = hmac.compare_digest

    def compare_digest(given, expected):
        compared.append((given, expected))
        return constant_time(given, expected)

    monkeypatch.setattr(health.hmac, "compare_digest", compare_digest)
    client.get("/forms/healthz", headers={"Authorization": "Bearer wrong"})
    client.get("/forms/healthz", headers=OPERATOR)
    token = TEST_HEALTH_TOKEN.encode()
    assert compared == [(b"wrong", token), (token, token)]


def test_a_spool_that_cannot_be_written_refuses_with_503_in_language(app, smtp_server):
    """Never a false success: nothing on disk, nothing answered 202."""
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = ON")
    response = app.test_client().post("/forms/support", data=support_form(lang="en"), headers=JSON)
    assert response.status_code == 503
    assert response.get_json() == {
        "ok": False,
        "error": "Sorry, we could not pass on your message just now. "
        "Nothing was sent. Please try again in a few minutes.",
    }
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("accept_language", "prefix"),
    [
        ("en-US,en;q=0.9", "/en"),
        ("fr-CH, fr;q=0.9, en;q=0.8", ""),
        ("en;q=0.2, fr;q=0.9", ""),
        ("de;q=1.0, en;q=0.5", "/en"),
        ("*", ""),
        ("", ""),
        ("tlh, x-klingon", ""),
    ],
)
def test_accept_language_picks_the_best_supported_language(client, smtp_server, accept_language, prefix):
    response = post(client, "support", support_form(lang=None), {"Accept-Language": accept_language})
    assert response.status_code == 303
    assert response.headers["Location"] == f"https://site.test{prefix}/support-thanks.html"


def test_error_page_style_is_allowed_by_its_nonce(client):
    response = client.get("/forms/volunteer")
    nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in response.get_data(as_text=True)


def test_uploads_stay_in_memory_never_in_a_temp_file(app):
    """Werkzeug spools files over 500 KB to disk by default; ours never do."""
    from flask import request

    resume = (io.BytesIO(samples.padded_pdf(4 * 1024 * 1024)), "cv.pdf", "application/pdf")
    with app.test_request_context("/forms/volunteer", method="POST", data=volunteer_form(resume=resume)):
        assert isinstance(request.files["resume"].stream, io.BytesIO)


def test_wrong_method_for_a_json_client_is_a_json_405_with_allow(client):
    response = client.get("/forms/volunteer", headers={**JSON, "Accept-Language": "en"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert response.get_json() == {"ok": False, "error": "This address only receives forms sent from the website."}


def submission_and_health(app) -> tuple[int, int]:
    """The status a support request gets now, and the public health status at the same moment."""
    client = app.test_client()
    return (
        client.post("/forms/support", data=support_form(), headers={**SITE, **JSON}).status_code,
        client.get("/forms/healthz").status_code,
    )


def break_key_file(key_file) -> None:
    """Replace the key file by one the service refuses (readable by others), as a careless copy would."""
    replacement = key_file.with_name("copied.key")
    replacement.write_bytes(key_file.read_bytes())
    replacement.chmod(0o644)
    replacement.replace(key_file)


@pytest.mark.parametrize("damage", [break_key_file, lambda key_file: key_file.unlink()])
def test_healthz_is_red_whenever_the_spool_key_file_cannot_seal(make_app, tmp_path, damage):
    """The heartbeat of old wrote no sealed row: it stayed green while every submission got 503."""
    key_file = tmp_path / "keys" / "spool.key"
    ensure_key_file(key_file)
    app = make_app(SPOOL_KEY=None, SPOOL_KEY_FILE=str(key_file))
    assert submission_and_health(app) == (202, 200)
    damage(key_file)
    assert submission_and_health(app) == (503, 503)
    operator = app.test_client().get("/forms/healthz", headers=OPERATOR).get_json()
    assert operator["reasons"][0].startswith("spool not writable (")


def test_healthz_is_red_with_a_corrupt_page_in_the_spool(app):
    corrupt_outgoing_table(app.extensions["forms_spool"].path)
    assert submission_and_health(app) == (503, 503)
    operator = app.test_client().get("/forms/healthz", headers=OPERATOR).get_json()
    assert (operator["ok"], operator["reasons"][0]) == (False, "spool not writable (DatabaseError)")


def test_the_probe_is_never_delivered_nor_counted(app, smtp_server):
    client = app.test_client()
    for _ in range(3):
        assert client.get("/forms/healthz").status_code == 200
    assert deliver(app) == 0 and smtp_server.messages == []
    assert client.get("/forms/healthz", headers=OPERATOR).get_json()["spool"] == {
        "depth": 0,
        "dead": 0,
        "oldest_age_seconds": None,
    }

"""Malformed and oversized requests over a real socket, to gunicorn as production runs it.

Request smuggling, broken chunking and bad header lines are refused by
gunicorn itself (a plain 400); what reaches the app must get the app's clear
answer. Either way: an answer, never a reset, a hang or a 500.
"""

from __future__ import annotations

import pytest

from harness.gunicorn import Gunicorn
from harness.settings import volunteer_form
from tests.hostile import raw
from tests.hostile.corpus import PDF_DATA
from tests.hostile.expect import check_answer

FIFTY_MEGABYTES = 50 * 1024 * 1024


@pytest.fixture
def served(app_config):
    """The service under gunicorn (one worker is enough here), settings as the tests' app."""
    with Gunicorn(settings=app_config, options=("--workers", "1")) as server:
        yield server


def _form_body() -> tuple[str, bytes]:
    """A valid volunteer application as multipart bytes."""
    fields = [raw.text_part(key, value) for key, value in volunteer_form(resume=None).items()]
    resume = (b'Content-Disposition: form-data; name="resume"; filename="cv.pdf"', PDF_DATA)
    return raw.multipart([*fields, resume])


def _chunked(body: bytes, size: int = 8192) -> bytes:
    """HTTP/1.1 chunked transfer coding of `body`."""
    chunks = (body[start : start + size] for start in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_fifty_megabyte_body_gets_a_413_in_language_not_a_reset(served, language):
    content_type, _ = _form_body()
    head = raw.request_head(
        "POST",
        "/forms/volunteer",
        {
            "Content-Type": content_type,
            "Content-Length": str(FIFTY_MEGABYTES),
            "Accept": "application/json",
            "Accept-Language": language,
            "Origin": "https://site.test",
        },
    )
    answer = raw.exchange(served.port, head, b"\0" * FIFTY_MEGABYTES)
    assert answer.status == 413
    check_answer(answer.status, answer.content_type, answer.body, language)


def test_a_chunked_body_over_the_cap_gets_a_413(served):
    content_type, _ = _form_body()
    head = raw.request_head(
        "POST",
        "/forms/volunteer",
        {
            "Content-Type": content_type,
            "Transfer-Encoding": "chunked",
            "Accept": "application/json",
            "Accept-Language": "en",
        },
    )
    answer = raw.exchange(served.port, head, _chunked(b"\0" * (8 * 1024 * 1024), size=256 * 1024))
    assert answer.status == 413
    check_answer(answer.status, answer.content_type, answer.body, "en")


def test_a_valid_chunked_submission_is_accepted(served):
    content_type, body = _form_body()
    head = raw.request_head(
        "POST",
        "/forms/volunteer",
        {"Content-Type": content_type, "Transfer-Encoding": "chunked", "Accept": "application/json"},
    )
    answer = raw.exchange(served.port, head, _chunked(body))
    assert answer.status == 202
    check_answer(answer.status, answer.content_type, answer.body)


SUPPORT = b"email=a%40example.org&consent=yes"
MALFORMED = {
    "content-length-and-chunked": (
        b"POST /forms/support HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
    ),
    "bad-chunk-size": (
        b"POST /forms/support HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\nzz\r\nabc\r\n"
    ),
    "negative-content-length": b"POST /forms/support HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "header-without-colon": b"POST /forms/support HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "nul-in-header": b"POST /forms/support HTTP/1.1\r\nHost: x\r\nAccept-Language: e\x00n\r\n\r\n",
    "header-over-8-kb": b"GET /forms/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n",
    "junk-request-line": b"POST /forms/support HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    "binary-garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n",
    "latin1-bytes-in-path": b"POST /forms/vol\xffunteer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "body-longer-than-announced": (
        b"POST /forms/support HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\n" + SUPPORT
    ),
    "absolute-uri-other-host": (
        b"POST http://evil.example/forms/support HTTP/1.1\r\nHost: evil.example\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (len(SUPPORT), SUPPORT)
    ),
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED)
def test_malformed_requests_get_a_clear_answer(served, request_bytes):
    answer = raw.exchange(served.port, request_bytes)
    check_answer(answer.status, answer.content_type, answer.body)

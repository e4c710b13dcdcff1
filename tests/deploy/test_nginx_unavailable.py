"""/forms through the deploy nginx when the service is down or hung: nothing readable left
behind (no body on disk, no visitor's address in any log line), and an answer the person
can act on, in their language.

The visitor connects from 127.0.0.7, an address nothing else in the tests uses, so that
finding it anywhere in nginx's logs means a log line named them.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from bs4 import BeautifulSoup
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import make_server

from forms_service import i18n
from forms_service.form_model import MEGABYTE
from forms_service.messages import FAILURES
from harness import samples
from harness.nginx import PROJECT, SNIPPET
from harness.settings import support_form, volunteer_form
from tests.deploy.helpers import multipart

VISITOR = "127.0.0.7"
PAGE = "forms-unavailable"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def folder(lang: str) -> str:
    return "" if lang == "fr" else f"{lang}/"


def post(deployed, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    """One visitor's POST over HTTP/1.1, from VISITOR's address: status, headers, body."""
    address = urlsplit(deployed.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60, source_address=(VISITOR, 0))
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, CaseInsensitiveDict(response.getheaders()), response.read()
    finally:
        connection.close()


def post_http2(deployed, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    """The same POST over HTTP/2, as browsers speak to production (nginx reads an HTTP/2
    body with other code), sent by curl from VISITOR's address."""
    command = [
        "curl",
        "--silent",
        "--http2-prior-knowledge",
        "--interface",
        VISITOR,
        "--max-time",
        "60",
        "--dump-header",
        "-",
        "--data-binary",
        "@-",
        f"http://127.0.0.1:{deployed.nginx.http2_port}{path}",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    answer = subprocess.run(command, input=body, capture_output=True, check=True).stdout
    head, body = answer.split(b"\r\n\r\n", 1)
    status, *fields = head.decode().split("\r\n")
    return int(status.split()[1]), CaseInsensitiveDict(field.split(": ", 1) for field in fields), body


def from_page(deployed, lang: str, form: str, accept: str = BROWSER) -> dict:
    """The headers a browser sends with a form posted from its page in `lang`."""
    return {"Origin": deployed.origin, "Referer": f"{deployed.url}{folder(lang)}{form}.html", "Accept": accept}


def post_support(deployed, lang: str, accept: str = BROWSER) -> tuple[int, dict, bytes]:
    headers = dict(
        from_page(deployed, lang, "support", accept), **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    return post(deployed, "/forms/support", urlencode(support_form(lang=lang)).encode(), headers)


def post_resume(deployed, lang: str, size: int, send=post) -> tuple[int, dict, bytes]:
    """A volunteer application with a resumé of `size` bytes, as multipart like the site's form."""
    form = volunteer_form(lang=lang, resume=(io.BytesIO(samples.padded_pdf(size)), "cv.pdf", "application/pdf"))
    prepared = requests.Request("POST", deployed.url + "forms/volunteer", files=multipart(form)).prepare()
    return send(
        deployed, "/forms/volunteer", prepared.body, dict(prepared.headers, **from_page(deployed, lang, "volunteer"))
    )


def heading(html: bytes | str) -> str:
    return BeautifulSoup(html, "html.parser").select_one("article h1").get_text(strip=True)


def assert_the_page(deployed, answer: tuple[int, dict, bytes], status: int, lang: str) -> None:
    """The answer is the site's page for an unavailable service, in `lang`, with `status`."""
    code, headers, body = answer
    assert code == status
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<html lang="{lang}"'.encode() in body
    assert heading(body) == heading((deployed.site_dir / f"{folder(lang)}{PAGE}.html").read_bytes())
    assert b"info@cocreatehumanity.org" in body and b"nginx" not in body


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_service_down_gets_the_sites_page_in_the_senders_language(unavailable, lang):
    assert_the_page(unavailable, post_support(unavailable, lang), 502, lang)


@pytest.mark.parametrize("referer", ["", "http://127.0.0.1/zz/support.html", "https://elsewhere.example/"])
def test_without_a_page_of_ours_in_the_referer_the_answer_is_in_the_default_language(unavailable, referer):
    """No Referer, a language folder the site does not have (yet), another site's page."""
    headers = {"Accept": BROWSER, "Content-Type": "application/x-www-form-urlencoded", "Referer": referer}
    assert_the_page(unavailable, post(unavailable, "/forms/support", b"email=a%40example.org", headers), 502, "fr")


@pytest.mark.parametrize(
    "accept, answer_type",
    [
        ("application/json", "application/json"),
        ("application/json, text/plain, */*", "application/json"),
        ("text/html, application/json", "text/html; charset=utf-8"),
        ("*/*", "text/html; charset=utf-8"),
        ("", "text/html; charset=utf-8"),
    ],
)
def test_json_only_for_a_client_that_asks_for_it_rather_than_html(unavailable, accept, answer_type):
    assert post_support(unavailable, "en", accept=accept)[1]["Content-Type"] == answer_type


def test_a_hung_service_gets_the_page_with_its_504(unavailable, stalled):
    assert_the_page(unavailable, post_support(unavailable, "en"), 504, "en")


def test_the_services_own_503_passes_through_in_the_senders_language(unavailable, make_app):
    """nginx answers for the service only when it cannot (proxy_intercept_errors stays off):
    the service's 503, a spool that cannot store the form now, says more, in the sender's words."""
    app = make_app(SITE_URL=unavailable.origin, ALLOWED_ORIGINS=[unavailable.origin], PROXY_COUNT=1)
    app.extensions["forms_spool"]._connection().execute("PRAGMA query_only = ON")  # the spool refuses every write
    server = make_server("127.0.0.1", unavailable.forms_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = post_support(unavailable, "fr", accept="application/json")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 503
    assert json.loads(body) == {"ok": False, "error": i18n.catalogue("fr").gettext(FAILURES[503])}


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_script_asking_for_json_gets_json_in_the_pages_language(unavailable, lang):
    status, headers, body = post_support(unavailable, lang, accept="application/json")
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer == json.loads((PROJECT / "docs" / lang / f"{PAGE}.json").read_text(encoding="utf-8"))
    assert answer["ok"] is False and "info@cocreatehumanity.org" in answer["error"]


@pytest.mark.parametrize("send", [post, post_http2], ids=["HTTP/1.1", "HTTP/2"])
def test_a_5_mb_resume_never_touches_the_disk(unavailable, stalled, send):
    """nginx unlinks a temporary file the moment it creates it, so an empty folder proves
    nothing: what counts is whether nginx holds one open while the service keeps it waiting."""
    nginx = unavailable.nginx
    temporary = (str(nginx.workdir / "client_body"), str(nginx.workdir / "proxy"))
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post_resume, unavailable, "fr", 5 * MEGABYTE, send)
        assert stalled.received.wait(timeout=60), "the hung service never got the whole upload"
        in_flight = nginx.open_files()
        listed = [path for name in temporary for path in Path(name).rglob("*")]
        assert_the_page(unavailable, answer.result(timeout=60), 504, "fr")
    assert str(nginx.workdir / "error.log") in in_flight  # the files nginx holds are seen
    assert [path for path in in_flight if path.startswith(temporary)] == []
    assert listed == [] and [path for name in temporary for path in Path(name).rglob("*")] == []


def test_the_body_buffer_is_as_large_as_the_cap():
    """What the 5 MB test shows holds for any size nginx accepts, as long as the two agree:
    raising one cap alone would send bodies between the two to disk, or refuse them."""
    snippet = SNIPPET.read_text()
    caps = set(re.findall(r"client_max_body_size (\S+);", snippet))
    assert len(caps) == 1
    assert set(re.findall(r"client_body_buffer_size (\S+);", snippet)) == caps


def test_no_log_line_names_the_visitor(unavailable, stalled):
    nginx = unavailable.nginx
    assert post_support(unavailable, "en")[0] == 504
    assert post_resume(unavailable, "en", MEGABYTE)[0] == 504
    assert post_resume(unavailable, "en", MEGABYTE, send=post_http2)[0] == 504
    stalled.stop()
    assert post_support(unavailable, "fr")[0] == 502
    assert post_support(unavailable, "fr", accept="application/json")[0] == 502
    # nginx, one worker, writes a request's log lines before it takes the next request:
    # once the second of these is answered, every line about the first and the visitor's is in.
    for _ in range(2):
        assert requests.get(unavailable.url + "?written", timeout=10).status_code == 200
    logs = nginx.logs()
    assert "127.0.0.1 - - [" in logs and "GET /?written" in logs  # the access log does name clients elsewhere
    assert VISITOR not in logs

"""The service under `gunicorn forms_service.wsgi:app`, as production runs it: uploads stay
in memory whatever the framing, over-size bodies get a clear 413, logs hold nothing personal.

Each worker runs an audit hook (gunicorn_audit.py) that reports every file it
opens for writing; the SMTP server is a real aiosmtpd with STARTTLS and AUTH.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from urllib3 import encode_multipart_formdata

from harness import samples
from harness.gunicorn import DOCUMENTED_OPTIONS, Gunicorn
from harness.settings import JSON, OPERATOR, SITE, TEST_HEALTH_TOKEN, service_settings, support_form, volunteer_form
from tests.service.helpers import wait_until

AUDIT_CONFIG = str(Path(__file__).with_name("gunicorn_audit.py"))
BIG_RESUME = samples.padded_pdf(4 * 1024 * 1024)  # far above Werkzeug's 500 kB in-memory threshold
CHUNK = 64 * 1024
# What the posts below typed, lower-cased, as it could leak into a log line.
PERSONAL = (
    "amina",
    "haddad",
    "aidworker",
    "i want to listen",
    "cannot sleep",
    "amman",
    "cv_amina",
    "cv amina",
    "psychological first aid",
    "+41 22",
    "big-resume",
)


@pytest.fixture(scope="module")
def server(sink, smtp_ca_file, tmp_path_factory):
    """Two gunicorn workers with the audit hook, relaying to `sink`, retrying within a second."""
    data_dir = tmp_path_factory.mktemp("gunicorn") / "data"
    settings = service_settings(
        sink.mail_config(),
        smtp_ca_file,
        data_dir,
        SPOOL_KEY=Fernet.generate_key().decode(),
        RETRY_BASE_SECONDS=0.2,
        RETRY_MAX_SECONDS=1,
    )
    with Gunicorn(settings=settings, options=(*DOCUMENTED_OPTIONS, "--config", AUDIT_CONFIG)) as running:
        running.data_dir = data_dir
        yield running


def multipart(resume: bytes, **overrides) -> tuple[bytes, str]:
    """A volunteer application encoded as a browser sends it; (body, Content-Type)."""
    fields = [(name, value) for name, value in volunteer_form(resume=None, **overrides).items()]
    fields.append(("resume", ("big-resume.pdf", resume, "application/pdf")))
    return encode_multipart_formdata(fields)


def chunks(body: bytes) -> Iterable[bytes]:
    """The body as a generator, so requests sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def exchange(port: int, head: str, body: Iterable[bytes], *, close_after: bool = False) -> tuple[int, dict, bytes]:
    """Send a hand-made request (the framing may lie) and read the whole answer.

    A reset or a broken pipe fails the test: the client must always get an answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode())
        for part in body:
            connection.sendall(part)
        if close_after:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while data := connection.recv(CHUNK):
            answer += data
    head_bytes, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, content


def request_head(content_type: str, *, length: int | None = None) -> str:
    """A POST to the volunteer form from the site, declaring `length` or chunked framing."""
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /forms/volunteer HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://site.test\r\n"
        f"Accept: application/json\r\nAccept-Language: en\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
    )


def chunked(body: bytes) -> Iterable[bytes]:
    """HTTP/1.1 chunked framing of `body`, written by hand."""
    for part in chunks(body):
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def audited_writes(server: Gunicorn) -> list[str]:
    """Paths the workers opened for writing so far."""
    return [line.split(" ", 2)[2] for line in server.output().splitlines() if line.startswith("AUDIT write-open ")]


def test_uploads_are_never_written_to_disk_whatever_the_framing(server, sink):
    """Content-Length, chunked, and a Content-Length that lies either way: no temporary file, ever."""
    body, content_type = multipart(BIG_RESUME)
    url = f"http://127.0.0.1:{server.port}/forms/volunteer"
    headers = {**SITE, **JSON, "Content-Type": content_type}
    assert requests.post(url, data=body, headers=headers, timeout=30).status_code == 202
    assert requests.post(url, data=chunks(body), headers=headers, timeout=30).status_code == 202
    short, _, answer = exchange(server.port, request_head(content_type, length=len(body) - 4096), [body])
    assert short == 400 and json.loads(answer)["ok"] is False
    cut, _, answer = exchange(
        server.port, request_head(content_type, length=len(body)), [body[:-CHUNK]], close_after=True
    )  # the client announces more than it sends, then stops
    assert cut == 400 and json.loads(answer)["ok"] is False
    assert len(sink.handler.wait_for(4, timeout=20)) >= 4  # relayed, resumé and all, from memory
    spool_file = str(server.data_dir / "spool.sqlite3")
    writes = audited_writes(server)
    assert spool_file in writes  # the hook works: it saw each worker create the spool
    # Besides the spool, the rate-limit counters and the upload slot's lock file (empty: a lock, no content).
    data = server.data_dir.resolve()
    assert set(writes) == {spool_file, str(data / "counters.sqlite3"), str(data / "upload-slot-0.lock")}


@pytest.mark.parametrize(
    ("size", "framing"),
    [
        (6 * 1024 * 1024, "length"),
        (40 * 1024 * 1024, "length"),
        (40 * 1024 * 1024, "chunked"),
    ],
)
def test_oversize_upload_gets_a_clear_413_never_a_reset(server, size, framing):
    body, content_type = multipart(samples.padded_pdf(size))
    if framing == "length":
        answer = exchange(server.port, request_head(content_type, length=len(body)), chunks(body))
    else:
        answer = exchange(server.port, request_head(content_type), chunked(body))
    status, headers, content = answer
    assert status == 413
    assert json.loads(content) == {
        "ok": False,
        "error": "What you sent is too large: the CV may be at most 5 MB and each text at most 5000 characters.",
    }
    assert headers["X-Content-Type-Options"] == "nosniff" and "default-src 'none'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize(("path", "status"), [("/nowhere", 404), ("/forms/volunteer", 405)])
def test_errors_without_a_body_answer_at_once(server, path, status):
    """Draining an unread body must not wait on requests that have none."""
    assert server.get(path, timeout=10)[0] == status  # a hang would last until gunicorn's 30 s timeout


def test_logs_of_a_whole_cycle_hold_ids_and_outcomes_never_content(server, sink):
    """Accepted, refused, the association's copy dead after a 550, the acknowledgement retried
    after a 451 and delivered: the log says so, with ids and codes, and never what anybody typed."""
    sink.handler.script.extend(["550 5.7.1 Refused", "451 4.3.0 Try again later"])
    start = len(server.output())  # the log is shared by the module: read only this test's part

    def log() -> str:
        return server.output()[start:]

    url = f"http://127.0.0.1:{server.port}/forms"
    accepted = requests.post(f"{url}/support", data=support_form(urgent="on"), headers={**SITE, **JSON}, timeout=30)
    refused = requests.post(
        f"{url}/support", data=support_form(email="aidworker@"), headers={**SITE, **JSON}, timeout=30
    )
    assert (accepted.status_code, refused.status_code) == (202, 400)
    submission_id = accepted.json()["id"]
    assert wait_until(lambda: "DEAD spool entry" in log() and "will retry" in log(), 20)
    delivered = re.compile(rf"delivered spool entry \d+ \(submission {re.escape(submission_id)}\)")
    assert wait_until(lambda: delivered.search(log()), 20)
    assert f"submission id={submission_id} form=support outcome=accepted" in log()
    assert "outcome=refused" in log()
    assert [secret for secret in PERSONAL if secret in log().lower()] == []


def test_health_figures_need_the_token_from_the_environment(server):
    """FORMS_HEALTH_TOKEN as systemd passes it: the public answer is one bit, the operator's has figures."""
    assert server.get("/forms/healthz") == (200, b'{"ok":true}\n')
    assert server.get("/forms/healthz?token=" + TEST_HEALTH_TOKEN) == (200, b'{"ok":true}\n')
    status, body = server.get("/forms/healthz", headers=OPERATOR)
    assert status == 200 and set(json.loads(body)["spool"]) == {"depth", "dead", "oldest_age_seconds"}


def spool_holders(pids: Iterable[int], spool: Path) -> set[int]:
    """Which of the processes hold the spool file open."""
    holders = set()
    for pid in pids:
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(descriptor) == str(spool):
                    holders.add(pid)
            except OSError:  # closed meanwhile
                pass
    return holders


def test_each_worker_opens_the_spool_itself_and_the_master_never(server):
    """gunicorn forks its workers before the app is built (startup.py has the master build it in a
    separate interpreter): each worker opens its own connections, and the master holds none that a
    fork could share, which SQLite forbids."""
    master, *workers = server.pids()
    spool = (server.data_dir / "spool.sqlite3").resolve()
    assert len(workers) == 3
    assert wait_until(lambda: spool_holders(workers, spool) == set(workers))  # each delivery thread's
    assert spool_holders([master], spool) == set()


def test_preload_is_refused_with_one_line(sink, smtp_ca_file, tmp_path):
    settings = service_settings(
        sink.mail_config(), smtp_ca_file, tmp_path / "data", SPOOL_KEY=Fernet.generate_key().decode()
    )
    with pytest.raises(RuntimeError, match="forms_service: gunicorn's --preload is not supported"):
        Gunicorn(settings=settings, options=(*DOCUMENTED_OPTIONS, "--preload")).__enter__()

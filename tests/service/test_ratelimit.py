"""Rate limits per client through Flask-Limiter's storage: Redis shares one budget between
workers; an unreachable Redis never stops a person (limits fall back to memory), and the
operator's health check and `spool check` say so. Only accepted submissions spend the budget; a
client is an IPv4 address or an IPv6 /64. With gunicorn's three workers and the default SQLite
counters: test_abuse.py."""

from __future__ import annotations

import contextlib
import html
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from forms_service import counters, i18n, messages, ratelimit
from forms_service.compose import ACK_SKIPPED, PAGE_SKIPPED
from forms_service.counters import SQLiteStorage, storage_uri
from harness.settings import JSON, OPERATOR, SITE, support_form, volunteer_form
from harness.smtp_sink import free_port
from tests.service.helpers import post


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen]]:
    """A throw-away redis-server on loopback (Debian's redis-server package), without persistence:
    its URI, and the process (a test may stop it early)."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def redis_uri():
    with redis_server() as (uri, _):
        yield uri


def limited_client(make_app, uri: str):
    """A client of a fresh app (as a separate worker would be) limited to 2 posts a minute."""
    return make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2 per minute", RATELIMIT_STORAGE_URI=uri).test_client()


def test_workers_share_one_budget_through_redis(make_app, smtp_server, redis_uri):
    first, second = limited_client(make_app, redis_uri), limited_client(make_app, redis_uri)
    codes = [post(client, "support", support_form(), JSON).status_code for client in (first, second, first)]
    assert codes == [202, 202, 429]
    other = post(second, "support", support_form(), JSON, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 202  # another client has its own budget


def test_unreachable_redis_falls_back_to_memory_limits(make_app, smtp_server):
    client = limited_client(make_app, f"redis://127.0.0.1:{free_port()}/0")
    codes = [post(client, "support", support_form(), JSON).status_code for _ in range(3)]
    assert codes == [202, 202, 429]


def test_unreachable_redis_leaves_the_daily_quotas_counted_in_memory(make_app, smtp_server):
    client = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0", ACK_LIMIT=1).test_client()
    for _ in range(2):
        assert post(client, "support", support_form(), JSON).status_code == 202
    assert [mail.rcpt_tos for mail in smtp_server.messages] == [
        ("support@cch.example.org",),
        ("aidworker@example.org",),
        ("support@cch.example.org",),
    ]


def test_behind_a_proxy_each_forwarded_client_has_its_own_budget(make_app, smtp_server):
    """FORMS_PROXY_COUNT=1 (nginx): the client is the address nginx forwards, not nginx itself."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute", PROXY_COUNT=1).test_client()

    def from_address(address: str) -> int:
        return post(client, "support", support_form(), {**JSON, "X-Forwarded-For": address}).status_code

    assert [from_address("198.51.100.1"), from_address("198.51.100.1"), from_address("198.51.100.2")] == [202, 429, 202]


def test_an_ipv6_client_is_its_64_network(app):
    """One household or phone gets a /64: its addresses share one budget; the next /64 is another client."""

    def client_of(address: str) -> str:
        with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
            return ratelimit.client()

    assert client_of("2001:db8:1:2::1") == client_of("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert client_of("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_of("::ffff:192.0.2.9") == client_of("192.0.2.9") == "192.0.2.9"


def test_two_addresses_of_one_64_share_a_budget(make_app, smtp_server):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute").test_client()

    def from_address(address: str) -> int:
        return post(client, "support", support_form(), JSON, environ_base={"REMOTE_ADDR": address}).status_code

    assert [
        from_address("2001:db8:5:6::10"),
        from_address("2001:db8:5:6:a:b:c:d"),
        from_address("2001:db8:5:7::10"),
    ] == [202, 429, 202]


def test_refused_posts_spend_nothing_of_the_submission_budget(make_app, smtp_server):
    """A foreign origin, a honeypot hit, a body of the wrong type and field errors each cost
    the refusal budget only: the person's own submissions still go through."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2 per minute").test_client()
    refused = [
        post(client, "support", support_form(), {**JSON, "Origin": "https://evil.example"}).status_code,
        post(client, "support", support_form(website="http://spam.example"), JSON).status_code,
        client.post(
            "/forms/support", data=b"{}", content_type="application/json", headers={**SITE, **JSON}
        ).status_code,
        post(client, "support", support_form(email="not an address"), JSON).status_code,
    ]
    assert refused == [403, 202, 415, 400]  # the honeypot hit is answered as a success, and sends nothing
    assert len(smtp_server.messages) == 0
    own = [post(client, "support", support_form(), JSON).status_code for _ in range(3)]
    assert own == [202, 202, 429]


def test_refusals_have_a_budget_of_their_own(make_app, smtp_server):
    """Past FORMS_RATELIMIT_REFUSALS, refusals from the site get 429 (with when to try again), in the
    submitter's language; foreign-origin ones are counted apart."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_REFUSALS="2 per minute").test_client()
    invalid = [post(client, "support", support_form(email="not an address"), JSON) for _ in range(3)]
    assert [answer.status_code for answer in invalid] == [400, 400, 429]
    assert 1 <= int(invalid[2].headers["Retry-After"]) <= 60
    assert invalid[2].get_json()["error"] == i18n.catalogue("en").gettext(messages.FAILURES[429])
    foreign = [
        post(client, "support", support_form(), {**JSON, "Origin": "https://evil.example"}).status_code
        for _ in range(3)
    ]
    assert foreign == [403, 403, 429]


def test_a_valid_post_gets_in_after_the_refusals_are_spent(make_app, smtp_server):
    """Refusals limit refusals only: behind one address (a hotel, an office), someone else's
    refused posts never lock out a valid request, nor the next valid volunteer application."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_REFUSALS="2 per minute").test_client()
    invalid = [post(client, "support", support_form(email="not an address"), JSON).status_code for _ in range(4)]
    assert invalid == [400, 400, 429, 429]
    assert post(client, "support", support_form(), JSON).status_code == 202
    assert post(client, "volunteer", volunteer_form(), JSON).status_code == 202
    honeypot = post(client, "support", support_form(website="http://spam.example"), JSON)
    assert honeypot.status_code == 429  # a refused post, past the budget: its answer stays 429
    assert [mail.rcpt_tos[0] for mail in smtp_server.messages if "cch.example.org" in mail.rcpt_tos[0]] == [
        "support@cch.example.org",
        "volunteer@cch.example.org",
    ]


def test_an_ipv6_clients_48_has_a_larger_budget_of_its_own(make_app, smtp_server):
    """A tunnel broker's free /48 holds 65,536 /64s: each /64 is a client, and its /48 counts too,
    with FORMS_RATELIMIT_NETWORK; an IPv4 client has no such network."""
    client = make_app(
        RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute", RATELIMIT_NETWORK="2 per minute"
    ).test_client()

    def from_address(address: str) -> int:
        return post(client, "support", support_form(), JSON, environ_base={"REMOTE_ADDR": address}).status_code

    same_48 = [from_address(f"2001:db8:48:{subnet}::1") for subnet in range(1, 5)]
    assert same_48 == [202, 202, 429, 429]
    assert from_address("2001:db8:49:1::1") == 202  # another /48
    assert [from_address(f"198.51.100.{host}") for host in range(1, 4)] == [202, 202, 202]


def test_an_ipv6_clients_network_is_its_48(app):
    def network_of(address: str) -> str | None:
        with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
            return ratelimit.network()

    assert network_of("2001:db8:1:2::1") == network_of("2001:db8:1:ffff::1") == "2001:db8:1::/48"
    assert network_of("::ffff:192.0.2.9") is None and network_of("192.0.2.9") is None


@pytest.mark.parametrize(
    "spelling",
    [
        "jane.doe@gmail.com",
        "Jane.Doe@Gmail.com",
        "janedoe@gmail.com",
        "j.a.n.e.d.o.e@gmail.com",
        "jane.doe+cv@gmail.com",
        "JANEDOE+1@googlemail.com",
        "jane.doe@googlemail.com",
        "janedoe@GMAIL.COM",
    ],
)
def test_every_spelling_of_a_gmail_inbox_is_one_inbox(spelling):
    assert ratelimit.inbox(spelling) == "janedoe@gmail.com"


def test_dots_count_outside_gmail_while_case_and_tags_never_do():
    assert (
        ratelimit.inbox("Jane.Doe+cv@Example.org") == ratelimit.inbox("jane.doe@example.org") == "jane.doe@example.org"
    )
    assert ratelimit.inbox("janedoe@example.org") != ratelimit.inbox("jane.doe@example.org")


def test_counters_restart_when_their_window_ends(tmp_path, monkeypatch):
    """The SQLite storage's fixed windows: a count lasts until its window's end, then starts again."""
    storage = SQLiteStorage(storage_uri(tmp_path / "data"))
    assert storage.path.stat().st_mode & 0o777 == 0o600 and storage.path.parent.stat().st_mode & 0o777 == 0o700
    now = [1_000_000.0]
    monkeypatch.setattr(counters.time, "time", lambda: now[0])
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 60, amount=-1) == 2 and storage.get("k") == 2
    assert storage.get_expiry("k") == 1_000_060.0
    assert storage.path.with_name(storage.path.name + "-wal").stat().st_mode & 0o777 == 0o600
    now[0] += 60
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1
    storage.clear("k")
    assert storage.get("k") == 0 and storage.check()


@pytest.mark.parametrize("staff_language", ["fr", "en"])
def test_left_out_emails_are_noted_in_the_staff_language(make_app, smtp_server, staff_language):
    """With no acknowledgement nor page left for the day, only the association's email goes out,
    to the support recipients, and both its parts say what was left out (limits off: quotas still hold)."""
    client = make_app(ACK_LIMIT=0, URGENT_LIMIT=0, STAFF_LANGUAGE=staff_language).test_client()
    assert post(client, "support", support_form(urgent="on"), JSON).status_code == 202
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("support@cch.example.org",)
    message = mail.parsed()
    staff = i18n.catalogue(staff_language)
    for part in ("plain", "html"):
        text = message.get_body((part,)).get_content()
        assert staff.gettext(ACK_SKIPPED) in html.unescape(text) and staff.gettext(PAGE_SKIPPED) in html.unescape(text)


def test_redis_stopped_mid_run_is_reported_while_submissions_go_on(make_app, smtp_server, caplog):
    """Fail open: nobody is refused, the public health stays green (a shared Redis down must not take
    every instance out of rotation), the operator's answer and `spool check` say what is wrong."""
    with redis_server() as (uri, server):
        app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=uri)
        client = app.test_client()
        assert client.get("/forms/healthz", headers=OPERATOR).get_json()["reasons"] == []
        assert app.test_cli_runner().invoke(args=["spool", "check"]).exit_code == 0
        server.terminate()
        server.wait(10)
        with caplog.at_level(logging.ERROR, logger="forms_service.health"):
            answers = [client.get("/forms/healthz", headers=OPERATOR) for _ in range(2)]
        assert [answer.status_code for answer in answers] == [200, 200]
        assert (answers[0].get_json()["status"], answers[0].get_json()["reasons"]) == (
            "CRITICAL",
            ["rate-limit storage unreachable: limits are counted per process until it is back"],
        )
        assert [record.levelname for record in caplog.records if record.name == "forms_service.health"] == ["ERROR"]
        assert post(client, "support", support_form(), JSON).status_code == 202
        check = app.test_cli_runner().invoke(args=["spool", "check"])
        assert check.exit_code == 2
        assert check.output.startswith("SPOOL CRITICAL - rate-limit storage unreachable: ")

"""Rate limits per client through Flask-Limiter's storage: Redis shares one budget between
workers; an unreachable Redis never stops a person (limits fall back to memory), and the
operator's health check and `spool check` say so."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.service.helpers import JSON, OPERATOR, post, support_form
from tests.smtp_sink import free_port


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen]]:
    """A throw-away redis-server on loopback (Debian's redis-server package), without persistence:
    its URI, and the process (a test may stop it early)."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def test_behind_a_proxy_each_forwarded_client_has_its_own_budget(make_app, smtp_server):
    """FORMS_PROXY_COUNT=1 (nginx): the client is the address nginx forwards, not nginx itself."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute", PROXY_COUNT=1).test_client()

    def from_address(address: str) -> int:
        return post(client, "support", support_form(), {**JSON, "X-Forwarded-For": address}).status_code

    assert [from_address("198.51.100.1"), from_address("198.51.100.1"), from_address("198.51.100.2")] == [202, 429, 202]


def test_redis_stopped_mid_run_is_reported_while_submissions_go_on(make_app, smtp_server, caplog):
    """Fail open: nobody is refused, the public health stays green (a shared Redis down must not take
    every instance out of rotation), the operator's answer and `spool check` say what is wrong."""
    with redis_server() as (uri, server):
        app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=uri)
        client = app.test_client()
        assert "warnings" not in client.get("/forms/healthz", headers=OPERATOR).get_json()
        assert app.test_cli_runner().invoke(args=["spool", "check"]).exit_code == 0
        server.terminate()
        server.wait(10)
        with caplog.at_level(logging.ERROR, logger="forms_service.health"):
            answers = [client.get("/forms/healthz", headers=OPERATOR) for _ in range(2)]
        assert [answer.status_code for answer in answers] == [200, 200]
        assert answers[0].get_json()["warnings"] == [
            "rate-limit storage unreachable: limits are counted per process until it is back"]
        assert [record.levelname for record in caplog.records if record.name == "forms_service.health"] == ["ERROR"]
        assert post(client, "support", support_form(), JSON).status_code == 202
        check = app.test_cli_runner().invoke(args=["spool", "check"])
        assert check.exit_code == 2
        assert check.output.startswith("SPOOL CRITICAL - rate-limit storage unreachable: ")

"""Helpers of the service tests: posting, delivering, scripted refusals, reading headers as a mail client does."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.header import decode_header, make_header

from forms_service import extensions
from harness.settings import SITE


def post(client, form_name: str, data: dict, headers: dict | None = None, **kwargs):
    """POST a form the way a browser on the site does (Origin of the site), then
    deliver the spool once, as the background thread would, so what the SMTP
    server holds right after is exactly what this post produced."""
    response = client.post(f"/forms/{form_name}", data=data, headers={**SITE, **(headers or {})}, **kwargs)
    deliver(client.application)
    return response


def deliver(app) -> int:
    """Relay everything due in `app`'s spool now, in this thread (test apps run no delivery thread)."""
    return extensions.deliverer(app).deliver_all()


def refuse_recipients(monkeypatch, sink, replies: dict[str, list[str]]) -> None:
    """Make `sink` answer RCPT TO for some addresses with scripted replies, one per
    attempt, then accept them (the shared sink gets its handler back after the test)."""
    pending = {address: list(script) for address, script in replies.items()}

    async def handle_RCPT(server, session, envelope, address, options):
        script = pending.get(address)
        if script:
            return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    monkeypatch.setattr(sink.handler, "handle_RCPT", handle_RCPT, raising=False)


def wait_until(condition, timeout: float = 5.0) -> bool:
    """Poll `condition` until it holds or the deadline passes: background work is
    awaited with a deadline, never with a fixed sleep taken as proof."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def as_shown(data: bytes) -> dict[str, str]:
    """Subject, From and Reply-To of a raw message as a mail client shows them.

    Decoded twice, by the modern parser and by decode_header/make_header (the
    older API many clients resemble), which must agree: a header one reader
    would show otherwise than the other fails here.
    """
    modern = message_from_bytes(data, policy=policy.default)
    raw = message_from_bytes(data, policy=policy.compat32)
    shown = {}
    for name in ("Subject", "From", "Reply-To"):
        if raw[name] is not None:
            shown[name] = str(make_header(decode_header(raw[name])))
            assert str(modern[name]) == shown[name], name
    return shown

"""Valid form posts to start from, so each test changes only what it is about."""

from __future__ import annotations

import io
import time
from email import message_from_bytes, policy
from email.header import decode_header, make_header

from forms_service.delivery import DELIVERER_EXTENSION
from forms_service.fields import FORMS
from tests import samples

JSON = {"Accept": "application/json"}
SITE = {"Origin": "https://site.test"}
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
TEST_HEALTH_TOKEN = "test-health-token-for-the-operators-monitoring"
OPERATOR = {"Authorization": f"Bearer {TEST_HEALTH_TOKEN}"}  # how monitoring asks healthz for the figures


def service_settings(mail_config: dict, ca_file, data_dir, **overrides) -> dict:
    """Complete service settings (keys without FORMS_) relaying to a test SMTP server: the one
    shape the app fixtures, the gunicorn tests, the fault rig and the benchmarks start from."""
    return {
        "SECRET_KEY": TEST_SECRET_KEY,
        "HEALTH_TOKEN": TEST_HEALTH_TOKEN,
        "SITE_URL": SITE["Origin"],
        # One inbox per form of fields.py, <form>@cch.example.org: a new form needs no set-up change.
        **{form.recipients_setting: [f"{form.name}@cch.example.org"] for form in FORMS.values()},
        "URGENT_RECIPIENTS": ["urgent@cch.example.org"],
        "MAIL_DEFAULT_SENDER": "CoCreate Humanity <forms@cch.example.org>",
        "MAIL_CA_FILE": str(ca_file),
        "MAIL_TIMEOUT": 5,
        "DATA_DIR": str(data_dir),
        # No built site: an HTML refusal is the plain page (tests/forms give the service the built site).
        "SITE_DIR": str(data_dir / "no-built-site"),
        "RATELIMIT_ENABLED": False,
        # Tests, the fault rig and benchmarks post many submissions naming one address: the daily
        # quotas apply only where a test is about them.
        "ACK_LIMIT": 1_000_000,
        "URGENT_LIMIT": 1_000_000,
        **mail_config,
        **overrides,
    }


def volunteer_form(**overrides) -> dict:
    """A complete, valid volunteer application with a real PDF resumé."""
    form = {
        "name": "Amina Haddad",
        "email": "amina@example.org",
        "motivation": "Ten years in the field; I know what it costs.\nI want to listen.",
        "resume": (io.BytesIO(samples.pdf_bytes()), "CV Amina.pdf", "application/pdf"),
        "languages": "Arabic, French, English",
        "location": "Amman, UTC+3",
        "availability": "Evenings",
        "training": "Psychological first aid",
        "consent": "yes",
        "lang": "en",
        "website": "",
    }
    return {key: value for key, value in {**form, **overrides}.items() if value is not None}


def support_form(**overrides) -> dict:
    """A complete, valid support request (not urgent)."""
    form = {
        "email": "aidworker@example.org",
        "name": "Sam",
        "message": "Back from a hard mission, I cannot sleep.",
        "situation": "between_missions",
        "preferred_language": "en",
        "contact": "phone",
        "phone": "+41 22 000 00 00",
        "consent": "yes",
        "lang": "en",
        "website": "",
    }
    return {key: value for key, value in {**form, **overrides}.items() if value is not None}


def post(client, form_name: str, data: dict, headers: dict | None = None, **kwargs):
    """POST a form the way a browser on the site does (Origin of the site), then
    deliver the spool once, as the background thread would, so what the SMTP
    server holds right after is exactly what this post produced."""
    response = client.post(f"/forms/{form_name}", data=data, headers={**SITE, **(headers or {})}, **kwargs)
    deliver(client.application)
    return response


def deliver(app) -> int:
    """Relay everything due in `app`'s spool now, in this thread (test apps run no delivery thread)."""
    return app.extensions[DELIVERER_EXTENSION].deliver_all()


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

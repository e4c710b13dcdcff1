"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

Tests exercise the service's real SMTP client against it: STARTTLS with a
certificate from a test CA (trustme), optional AUTH, implicit TLS, and
scripted failures (4xx/5xx replies, dropped connections, slow answers) for
the retry logic of the spool.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "relay-user"
PASSWORD = "relay-secret-password"
DROP = "drop"  # scripted reply: close the connection without answering


@dataclass(frozen=True)
class Received:
    """One message as the server accepted it: envelope and the exact bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    authenticated: bool

    def parsed(self) -> EmailMessage:
        """The message parsed with the modern email API, for header/part checks."""
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SinkHandler:
    """aiosmtpd handler: records messages, or plays scripted replies first.

    `script` holds replies used one per DATA command, in order (e.g.
    "451 4.3.0 Try later", "550 5.7.1 Refused", DROP); when it is empty the
    message is accepted. `delay` seconds are waited before answering DATA;
    `data_started` is set once a DATA command's message has come in.
    """

    messages: list[Received] = field(default_factory=list)
    script: deque = field(default_factory=deque)
    delay: float = 0.0
    received: threading.Condition = field(default_factory=threading.Condition)
    data_started: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.data_started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            reply = self.script.popleft()
            if reply == DROP:
                server.transport.close()
                return "421 4.3.0 Closing"  # never reaches the client
            return reply
        with self.received:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    envelope.original_content or envelope.content,
                    session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                    bool(session.authenticated),
                )
            )
            self.received.notify_all()
        return "250 2.0.0 Message accepted"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` messages arrived (for background senders)."""
        with self.received:
            self.received.wait_for(lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def reset(self) -> None:
        """Forget received messages and scripted replies between tests."""
        with self.received:
            self.messages.clear()
        self.script.clear()
        self.delay = 0.0
        self.data_started.clear()


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """Accept only the fixed test credentials, so a wrong login is a real 535 (`handled=False`: aiosmtpd
    answers it; its default leaves the client waiting for a reply)."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USERNAME
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """Server-side TLS context with a certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


class SmtpSink:
    """A running aiosmtpd server on 127.0.0.1 with its handler and settings.

    mode: "starttls" (STARTTLS offered, required before MAIL), "ssl" (implicit
    TLS, SMTPS) or "plain" (no TLS at all). auth=True requires AUTH, which
    aiosmtpd only offers over TLS.
    """

    def __init__(self, ca: trustme.CA | None, *, mode: str = "starttls", auth: bool = False):
        self.handler = SinkHandler()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.mode = mode
        self.auth = auth
        options = {"authenticator": authenticate, "auth_required": auth}
        if mode == "starttls":
            options.update(tls_context=server_context(ca), require_starttls=True)
        if mode == "ssl":
            options["ssl_context"] = server_context(ca)
        self.controller = Controller(self.handler, hostname=self.host, port=self.port, **options)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def mail_config(self) -> dict:
        """Flask-Mail settings (without the FORMS_ prefix) that reach this server."""
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_USE_TLS": self.mode == "starttls",
            "MAIL_USE_SSL": self.mode == "ssl",
            "MAIL_ALLOW_PLAINTEXT": self.mode == "plain",
            "MAIL_USERNAME": USERNAME if self.auth else None,
            "MAIL_PASSWORD": PASSWORD if self.auth else None,
        }

"""Handing composed emails to the SMTP server, safely, through Flask-Mail, whose smtplib connections verify
no certificate and have no timeout: its Connection gets a host here that verifies TLS, bounds every SMTP
operation with FORMS_MAIL_TIMEOUT and refuses plaintext to another machine unless allowed. Failures are
sorted into temporary, permanent, and ActionRequired (README.md, "Spool and delivery")."""

from __future__ import annotations

import contextlib
import re
import select
import smtplib
import socket
import ssl
from collections.abc import Iterable

import flask_mail
from flask import Flask

from .config import is_loopback
from .outgoing import OutgoingMail

AUTHENTICATION_CODES = (530, 534, 535)  # required, mechanism too weak (or a web login asked), credentials invalid
SIZE_REFUSED = 552  # a MAIL FROM refused for this message's SIZE, not for its sender
GREETING_WAIT = 3.0  # a server that greets in plain does so at once; one silent this long may wait for a TLS hello
ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]*@[^\s<>()\[\]\"',;:]+")


class RelayError(Exception):
    """Sending failed; anything that is not a PermanentRelayError is worth retrying
    (a RecipientsRefused: for its temporarily refused recipients only)."""


class TemporaryRelayError(RelayError):
    """Try again later: 4xx reply, timeout, refused or dropped connection."""


class PermanentRelayError(RelayError):
    """The server refused this message with a 5xx reply: retrying will not help."""


class ActionRequired(TemporaryRelayError):
    """Login, certificate, TLS mode or sender refused: a setting (or the server's certificate) must change.
    Retried, so nothing is lost meanwhile, and `spool check` is CRITICAL from the first attempt."""


class InsecureTransportError(ActionRequired):
    """Plaintext to another machine was not allowed."""


class RecipientsRefused(RelayError):
    """The server refused some recipients and accepted the others (or refused them with mixed codes): those it
    accepted must not get the message again, so the caller retries only `temporary` (4xx) and gives up only
    on `permanent` (5xx)."""

    def __init__(self, refused: dict[str, tuple[int, bytes]]):
        codes = sorted({code for code, _ in refused.values()})
        super().__init__(f"recipients refused: {', '.join(map(str, codes))}")
        self.temporary = tuple(address for address, (code, _) in refused.items() if code < 500)
        self.permanent = tuple(address for address, (code, _) in refused.items() if code >= 500)


class VerifiedConnection(flask_mail.Connection):
    """Flask-Mail's Connection, with a host that verifies TLS and never waits forever."""

    def __init__(self, mail, *, context: ssl.SSLContext, timeout: float, allow_plaintext: bool):
        super().__init__(mail)
        self.context = context
        self.timeout = timeout
        self.allow_plaintext = allow_plaintext

    def configure_host(self) -> smtplib.SMTP:
        """Connect, secure, authenticate; close the socket again if any step fails."""
        mail = self.mail
        encrypted = mail.use_ssl or mail.use_tls
        if not encrypted and not self.allow_plaintext and not is_loopback(mail.server):
            raise InsecureTransportError(f"plaintext SMTP to {mail.server} is not allowed")
        if mail.use_ssl:
            try:
                host = smtplib.SMTP_SSL(mail.server, mail.port, timeout=self.timeout, context=self.context)
            except ssl.SSLError as error:  # a plain greeting read as a TLS record
                if error.reason == "WRONG_VERSION_NUMBER":
                    raise ActionRequired(
                        "the server does not speak TLS at once: unset FORMS_MAIL_USE_SSL, use FORMS_MAIL_USE_TLS"
                    ) from None
                raise
        else:
            host = PlainSMTP(mail.server, mail.port, timeout=self.timeout)
        try:
            if mail.use_tls:
                host.starttls(context=self.context)
            if mail.username and mail.password:
                host.login(mail.username, mail.password)
        except BaseException:
            host.close()
            raise
        return host


class PlainSMTP(smtplib.SMTP):
    """smtplib's SMTP (plain, then STARTTLS or not), telling a server that speaks TLS at once from a slow one:
    silent until the client's TLS hello, it would leave smtplib waiting out the whole timeout for a greeting."""

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        greeting = select.poll()
        greeting.register(sock, select.POLLIN)
        wait = min(timeout, GREETING_WAIT)
        if not greeting.poll(wait * 1000) and _speaks_tls_at_once(host, port, wait):
            sock.close()
            raise ActionRequired("the server speaks TLS at once: set FORMS_MAIL_USE_SSL, unset FORMS_MAIL_USE_TLS")
        return sock


def _speaks_tls_at_once(host: str, port: int, timeout: float) -> bool:
    """Whether the server answers a TLS hello with a TLS record (handshake or alert), on a connection of its
    own; a plain server's first bytes are its greeting's `220`."""
    hello = ssl.MemoryBIO()
    with contextlib.suppress(ssl.SSLWantReadError):  # the hello is written; the answer is for the socket
        ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), hello, server_hostname=host).do_handshake()
    try:
        with socket.create_connection((host, port), timeout) as probe:
            probe.sendall(hello.read())
            return probe.recv(2) in (b"\x15\x03", b"\x16\x03")  # an alert or a handshake record, TLS 1.x
    except OSError:
        return False


def verified_context(config) -> ssl.SSLContext:
    """The TLS context of every delivery: certificate and host name checked, against FORMS_MAIL_CA_FILE or the
    system's CAs. One per process (delivery.init_delivery): loading the CAs costs about 20 ms of CPU."""
    return ssl.create_default_context(cafile=config["MAIL_CA_FILE"])


class Relay:
    """One SMTP session reused for several messages (`with Relay(app) as relay`); reconnects after a failure."""

    def __init__(self, app: Flask, context: ssl.SSLContext | None = None):
        config = app.config
        self._mail = app.extensions["mail"]
        self._options = {
            "context": context or verified_context(config),
            "timeout": config["MAIL_TIMEOUT"],
            "allow_plaintext": config["MAIL_ALLOW_PLAINTEXT"],
        }
        self._connection: VerifiedConnection | None = None

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, mail: OutgoingMail) -> None:
        """Deliver one message to every recipient, or raise a classified RelayError (RecipientsRefused: see
        there)."""
        host = self._open().host
        try:
            refused = host.sendmail(mail.sender, list(mail.recipients), mail.data)
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            raise _all_refused(error.recipients) from None
        except smtplib.SMTPResponseException as error:
            self.close()
            raise _needs_operator(error) or _by_codes(
                [(error.smtp_code, error.smtp_error)], "message refused"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise TemporaryRelayError(f"sending failed: {type(error).__name__}") from None
        if refused:
            raise RecipientsRefused(refused)

    def close(self) -> None:
        """End the session politely if possible; a dead connection is just dropped."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.host.quit()
        except (smtplib.SMTPException, OSError):
            connection.host.close()

    def _open(self) -> VerifiedConnection:
        """The live connection, opened on first use; failures are temporary, or ActionRequired."""
        if self._connection is None:
            connection = VerifiedConnection(self._mail, **self._options)
            try:
                connection.__enter__()  # config.py refuses MAIL_SUPPRESS_SEND, so this always connects
            except (smtplib.SMTPException, OSError) as error:
                raise _needs_operator(error) or TemporaryRelayError(
                    f"cannot open SMTP session: {_describe(error)}"
                ) from None
            self._connection = connection
        return self._connection


def _all_refused(refused: dict[str, tuple[int, bytes]]) -> RelayError:
    """Every recipient refused: one class when their codes agree, else split them."""
    permanent = [code >= 500 for code, _ in refused.values()]
    if all(permanent) or not any(permanent):
        return _by_codes(refused.values(), "all recipients refused")
    return RecipientsRefused(refused)


def _by_codes(replies: Iterable[tuple[int, bytes]], what: str) -> RelayError:
    """Permanent only when every reply is 5xx: any 4xx means a retry may succeed."""
    codes = [code for code, _ in replies]
    error_class = PermanentRelayError if codes and all(code >= 500 for code in codes) else TemporaryRelayError
    return error_class(f"{what}: {', '.join(map(str, codes))}")


def _needs_operator(error: BaseException) -> ActionRequired | None:
    """The ActionRequired an SMTP failure means, with what to change, or None when retrying may help alone."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return ActionRequired(
            f"certificate not trusted ({error.verify_message}): see FORMS_MAIL_SERVER, FORMS_MAIL_CA_FILE"
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):  # STARTTLS or AUTH not offered
        return ActionRequired(f"{str(error).rstrip('.')}: see FORMS_MAIL_USE_TLS, FORMS_MAIL_USERNAME")
    if not isinstance(error, smtplib.SMTPResponseException):
        return None
    if error.smtp_code in AUTHENTICATION_CODES:
        settings = "FORMS_MAIL_USERNAME, FORMS_MAIL_PASSWORD" + (
            ", FORMS_MAIL_USE_TLS" if error.smtp_code == 530 else ""
        )
        return ActionRequired(f"authentication refused: {_reply(error)}: see {settings}")
    if isinstance(error, smtplib.SMTPSenderRefused) and error.smtp_code >= 500 and error.smtp_code != SIZE_REFUSED:
        return ActionRequired(f"sender refused: {_reply(error)}: see FORMS_MAIL_ENVELOPE_FROM")
    return None


def _reply(error: smtplib.SMTPResponseException) -> str:
    """The reply's code and text, on one short line, each address in it (a refusal may quote one) replaced."""
    text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
    text = " ".join(re.sub(r"[^\x20-\x7e]", " ", text).split())
    return f"{error.smtp_code} {ADDRESS.sub('[address]', text)}"[:200]


def _describe(error: BaseException) -> str:
    """A short cause for logs, without server banners that could echo addresses."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__} {error.smtp_code}"
    if isinstance(error, socket.timeout):
        return "timed out"
    return type(error).__name__

"""The SMTP client against real servers: verified TLS, timeouts, plaintext policy, error classes."""

from __future__ import annotations

import time

import pytest

from forms_service.outgoing import OutgoingMail
from forms_service.relay import (
    ActionRequired,
    InsecureTransportError,
    PermanentRelayError,
    RecipientsRefused,
    Relay,
    TemporaryRelayError,
    _speaks_tls_at_once,
)
from harness.smtp_sink import DROP
from tests.service.helpers import refuse_recipients


def mail(number: int = 1, recipients: tuple[str, ...] = ("team@cch.example.org",)) -> OutgoingMail:
    data = (
        f"From: forms@cch.example.org\r\nTo: {', '.join(recipients)}\r\nSubject: test {number}\r\n"
        f"Message-ID: <id.{number}@site.test>\r\n\r\nHello {number}\r\n"
    ).encode()
    return OutgoingMail(f"<id.{number}@site.test>", "forms@cch.example.org", recipients, data)


def send_all(app, mails: list[OutgoingMail]) -> None:
    """Send several messages over one session, as the deliverer does."""
    with Relay(app) as relay:
        for outgoing in mails:
            relay.send(outgoing)


def test_starttls_with_trusted_ca_and_auth_delivers_exact_bytes(app, smtp_server):
    with app.app_context():
        send_all(app, [mail(1), mail(2)])
    assert [received.data for received in smtp_server.messages] == [mail(1).data, mail(2).data]
    assert all(received.tls and received.authenticated for received in smtp_server.messages)


def test_one_session_is_reused_for_several_messages(app, smtp_server, monkeypatch):
    from forms_service import relay as relay_module

    opened = []
    original = relay_module.VerifiedConnection.configure_host
    monkeypatch.setattr(
        relay_module.VerifiedConnection, "configure_host", lambda self: opened.append(1) or original(self)
    )
    send_all(app, [mail(1), mail(2), mail(3)])
    assert len(opened) == 1 and len(smtp_server.messages) == 3


def test_implicit_tls_server_is_verified_and_used(make_app, smtp_sink_factory):
    sink = smtp_sink_factory(mode="ssl")
    send_all(make_app(**sink.mail_config()), [mail()])
    assert sink.messages[0].tls


def test_untrusted_certificate_is_refused(make_app, untrusted_smtp_server):
    app = make_app(**untrusted_smtp_server.mail_config())
    with pytest.raises(ActionRequired, match=r"^certificate not trusted \(unable to get local issuer certificate\)"):
        send_all(app, [mail()])
    assert untrusted_smtp_server.messages == []


def test_starttls_against_an_implicit_tls_port_is_told_within_seconds(make_app, smtp_sink_factory):
    """Such a server waits for the client's TLS hello and never greets: not a 30 s wait and a bare
    disconnection, but what to change."""
    sink = smtp_sink_factory(mode="ssl")
    started = time.monotonic()
    with pytest.raises(ActionRequired, match="^the server speaks TLS at once: set FORMS_MAIL_USE_SSL, unset FOR"):
        send_all(
            make_app(**{**sink.mail_config(), "MAIL_USE_SSL": False, "MAIL_USE_TLS": True, "MAIL_TIMEOUT": 30}),
            [mail()],
        )
    assert time.monotonic() - started < 10


def test_implicit_tls_against_a_plain_port_is_told(make_app, smtp_server):
    with pytest.raises(ActionRequired, match="^the server does not speak TLS at once: unset FORMS_MAIL_USE_SSL, use"):
        send_all(make_app(MAIL_USE_SSL=True, MAIL_USE_TLS=False), [mail()])
    assert smtp_server.messages == []


def test_a_slow_greeting_is_waited_for(make_app, smtp_server, smtp_sink_factory, monkeypatch):
    """A plain server silent past the greeting wait is asked for TLS on a connection of its own, answers
    with its greeting, and is then used as usual. The probe tells it from a server speaking TLS at once."""
    tls = smtp_sink_factory(mode="ssl")
    assert [_speaks_tls_at_once("127.0.0.1", sink.mail_config()["MAIL_PORT"], 5) for sink in (smtp_server, tls)] == [
        False,
        True,
    ]
    monkeypatch.setattr("forms_service.relay.GREETING_WAIT", 0.0)
    send_all(make_app(), [mail()])
    assert len(smtp_server.messages) == 1


def test_system_store_does_not_trust_the_test_ca(make_app, smtp_server):
    with pytest.raises(TemporaryRelayError, match="certificate"):
        send_all(make_app(MAIL_CA_FILE=None), [mail()])


def test_certificate_host_name_is_checked(make_app, smtp_server):
    """The certificate names 127.0.0.1 and localhost; another name for the same host fails."""
    app = make_app(MAIL_SERVER="127.0.0.2")
    with pytest.raises(TemporaryRelayError):
        send_all(app, [mail()])


def test_plaintext_to_another_host_is_refused_before_connecting(app):
    app.extensions["mail"].use_tls = False
    app.extensions["mail"].server = "192.0.2.10"  # TEST-NET: would hang if we tried
    started = time.monotonic()
    with pytest.raises(InsecureTransportError):
        send_all(app, [mail()])
    assert time.monotonic() - started < 5  # refused at once, not after a connection attempt's timeout


def test_plaintext_to_loopback_is_allowed(make_app, smtp_sink_factory):
    sink = smtp_sink_factory(mode="plain")
    send_all(make_app(**{**sink.mail_config(), "MAIL_ALLOW_PLAINTEXT": False}), [mail()])
    assert len(sink.messages) == 1 and not sink.messages[0].tls


def test_starttls_required_but_not_offered_is_refused(make_app, smtp_sink_factory):
    sink = smtp_sink_factory(mode="plain")
    with pytest.raises(
        ActionRequired, match="^STARTTLS extension not supported by server: see FORMS_MAIL_USE_TLS, FORMS_MAIL_USERNAME"
    ):
        send_all(make_app(**{**sink.mail_config(), "MAIL_USE_TLS": True}), [mail()])
    assert sink.messages == []


def test_every_operation_has_a_timeout(make_app, smtp_server):
    smtp_server.handler.delay = 15
    started = time.monotonic()
    with pytest.raises(TemporaryRelayError):
        send_all(make_app(MAIL_TIMEOUT=1), [mail()])
    assert time.monotonic() - started < 10  # cut by the 1 s timeout, not by the server's 15 s delay


def test_refused_connection_is_temporary(make_app):
    with pytest.raises(TemporaryRelayError):
        send_all(make_app(MAIL_PORT=1), [mail()])


def test_wrong_password_needs_the_operator(make_app, smtp_server):
    with pytest.raises(ActionRequired) as refused:
        send_all(make_app(MAIL_PASSWORD="wrong", MAIL_TIMEOUT=1), [mail()])
    assert str(refused.value) == (
        "authentication refused: 535 5.7.8 Authentication credentials invalid: see FORMS_MAIL_USERNAME, "
        "FORMS_MAIL_PASSWORD"
    )


@pytest.mark.parametrize(
    ("reply", "error", "said"),
    [
        (
            "550 5.7.1 <forms@cch.example.org>: Sender address\trejected: not owned by user relay-user\x1b[31m",
            ActionRequired,
            "sender refused: 550 5.7.1 <[address]>: Sender address rejected: not owned by user relay-user [31m: "
            "see FORMS_MAIL_ENVELOPE_FROM",
        ),
        ("530 5.7.0 Authentication required", ActionRequired, "authentication refused: 530 5.7.0 Authentication"),
        ("552 5.3.4 Message size exceeds fixed limit", PermanentRelayError, "message refused: 552"),
        ("451 4.3.0 Try again later", TemporaryRelayError, "message refused: 451"),
    ],
)
def test_a_refused_sender_needs_the_operator_unless_it_is_the_size(app, smtp_server, monkeypatch, reply, error, said):
    """MAIL FROM names the settings' sender: a 5xx is theirs to fix, quoted without the address it may
    hold; a 552 refuses this message's SIZE, a 4xx may pass later."""

    async def handle_MAIL(server, session, envelope, address, options):
        return reply

    monkeypatch.setattr(smtp_server.handler, "handle_MAIL", handle_MAIL, raising=False)
    with pytest.raises(error) as refused:
        send_all(app, [mail()])
    assert type(refused.value) is error and str(refused.value).startswith(said)
    assert "@" not in str(refused.value)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("451 4.3.0 Try again later", TemporaryRelayError),
        ("421 4.3.2 Shutting down", TemporaryRelayError),
        (DROP, TemporaryRelayError),
        ("550 5.7.1 Refused", PermanentRelayError),
        ("554 5.6.0 Content rejected", PermanentRelayError),
    ],
)
def test_failures_are_classified(app, smtp_server, reply, error):
    smtp_server.handler.script.append(reply)
    with pytest.raises(error):
        send_all(app, [mail()])
    assert smtp_server.messages == []


def test_relay_reconnects_after_a_failure(app, smtp_server):
    smtp_server.handler.script.append(DROP)
    with Relay(app) as relay:
        with pytest.raises(TemporaryRelayError):
            relay.send(mail(1))
        relay.send(mail(2))
    assert [received.data for received in smtp_server.messages] == [mail(2).data]


TEAM = ("a@cch.example.org", "b@cch.example.org", "c@cch.example.org")


def test_partly_refused_recipients_are_named_by_class(app, smtp_server, monkeypatch):
    """Some accepted, one refused for now, one for good: the caller learns who still needs it."""
    refuse_recipients(
        monkeypatch,
        smtp_server,
        {TEAM[1]: ["450 4.2.1 Mailbox busy"], TEAM[2]: ["550 5.1.1 <c@cch.example.org> No such user"]},
    )
    with pytest.raises(RecipientsRefused) as refused:
        send_all(app, [mail(1, TEAM), mail(2)])
    assert (refused.value.temporary, refused.value.permanent) == ((TEAM[1],), (TEAM[2],))
    assert str(refused.value) == "recipients refused: 450, 550"
    assert [received.rcpt_tos for received in smtp_server.messages] == [(TEAM[0],)]


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        (["451 4.3.0 Later", "452 4.3.1 Full"], TemporaryRelayError),
        (["550 5.1.1 No", "553 5.1.3 Bad"], PermanentRelayError),
        (["451 4.3.0 Later", "550 5.1.1 No"], RecipientsRefused),
    ],
)
def test_all_recipients_refused_is_one_class_unless_codes_differ(app, smtp_server, monkeypatch, replies, error):
    refuse_recipients(monkeypatch, smtp_server, {TEAM[0]: [replies[0]], TEAM[1]: [replies[1]]})
    with pytest.raises(error):
        send_all(app, [mail(1, TEAM[:2])])
    assert smtp_server.messages == []


def test_a_message_held_as_a_view_arrives_dot_stuffed_and_unstuffed(app, smtp_server):
    """What delivery hands the relay (a view into the row's plaintext, after its envelope line): every
    line as it was, those starting with a dot included."""
    raw = b'{"head":1}\nSubject: dots\r\n\r\nfirst\r\n.starts a line\r\n..two dots\r\n.\r\n'
    data = memoryview(raw)[11:]
    send_all(app, [OutgoingMail("<dots@site.test>", "forms@cch.example.org", ("team@cch.example.org",), data)])
    assert [received.data for received in smtp_server.messages] == [raw[11:]]

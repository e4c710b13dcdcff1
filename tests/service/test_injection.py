"""CR/LF anywhere never creates a header: in names, subject parts or file names. And what
reaches a header shows exactly as typed: no encoded word, bidi control or separator makes a
mail client display something else."""

from __future__ import annotations

import base64
import io

import pytest

from forms_service import i18n
from forms_service.compose import MailSettings, compose
from forms_service.fields import FORMS, SUPPORT, VOLUNTEER
from forms_service.uploads import inspect
from forms_service.validation import Submission
from harness import samples
from harness.settings import JSON, support_form, volunteer_form
from tests.service.helpers import as_shown, deliver, post

INJECTION = "Amina\r\nBcc: victim@example.org\r\nX-Evil: 1"


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"])
@pytest.mark.parametrize(("form_name", "make_form"), [("volunteer", volunteer_form), ("support", support_form)])
def test_any_line_break_in_a_one_line_field_is_refused_before_any_email(
    client, smtp_server, breaker, form_name, make_form
):
    injection = f"Amina{breaker}Bcc: victim@example.org"
    response = post(
        client, form_name, make_form(name=injection, email=f"a@example.org{breaker}Bcc: v@example.org"), JSON
    )
    assert response.status_code == 400
    assert sorted(response.get_json()["errors"]) == ["email", "name"]
    assert smtp_server.messages == []


def raw_multipart(fields: dict, file_header: str, file_data: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand, so the file part's header is exactly `file_header`."""
    boundary = "b0undary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f"--{boundary}\r\n{file_header}\r\nContent-Type: application/pdf\r\n\r\n".encode()
        + file_data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_crlf_in_encoded_file_name_is_neutralised(client, smtp_server):
    """RFC 2231 lets a client encode CR/LF in a file name; it must not reach a header."""
    fields = {key: value for key, value in volunteer_form().items() if key != "resume"}
    header = (
        'Content-Disposition: form-data; name="resume"; '
        "filename*=UTF-8''cv%0D%0ABcc%3A%20victim%40example.org%0D%0A.pdf"
    )
    body, content_type = raw_multipart(fields, header, samples.pdf_bytes())
    response = client.post("/forms/volunteer", data=body, headers={**JSON, "Content-Type": content_type})
    assert response.status_code == 202
    deliver(client.application)
    for received in smtp_server.messages:
        assert "bcc" not in header_names(received.data)
        assert "victim@example.org" not in received.rcpt_tos
    [attachment] = smtp_server.messages[0].parsed().iter_attachments()
    assert attachment.get_filename() == "cv_Bcc_victim_example_org.pdf"


def test_raw_crlf_in_file_part_header_only_breaks_that_part(client, smtp_server):
    resume = (io.BytesIO(samples.pdf_bytes()), "cv\r\nBcc: victim@example.org\r\n.pdf", "application/pdf")
    response = post(client, "volunteer", volunteer_form(resume=resume), JSON)
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["resume"]
    assert smtp_server.messages == []


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\x85"])
def test_compose_flattens_line_breaks_even_without_validation(app, breaker):
    """Defence in depth: compose alone must not let a line break through."""
    document = inspect(f"cv{breaker}Bcc: victim@example.org.pdf", samples.pdf_bytes())
    submission = Submission(
        VOLUNTEER,
        {"name": INJECTION.replace("\r\n", breaker), "email": "a@example.org", "motivation": "m", "consent": True},
        document,
    )
    mails = compose(submission, "abc123", "en", MailSettings.from_config(app.config))
    for mail in mails:
        names = header_names(bytes(mail.data))
        assert "bcc" not in names and "x-evil" not in names
        assert mail.recipients in (("volunteer@cch.example.org",), ("a@example.org",))


def test_support_subject_never_contains_what_was_typed(app):
    submission = Submission(
        SUPPORT,
        {
            "email": "secret.person@example.org",
            "name": "Secret Name",
            "message": "Secret message",
            "urgent": True,
            "consent": True,
        },
    )
    association = compose(submission, "s0meId_-xyz", "fr", MailSettings.from_config(app.config))[0]
    subject = bytes(association.data).split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
    assert subject == "URGENT : demande de soutien s0meId_-"


def encoded_word(text: str) -> str:
    """`text` as one RFC 2047 encoded word, as a hostile submitter would type it."""
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


VOLUNTEER_SUBJECTS = {"en": "Volunteer application from {}", "fr": "Candidature bénévole de {}"}
SUPPORT_SUBJECTS = {"en": "Support request {}", "fr": "Demande de soutien {}"}
SENDER = "CoCreate Humanity <forms@cch.example.org>"
# Names a mail client would decode into something else if they were written as typed.
ENCODED_NAMES = [
    encoded_word("Amina\r\nURGENT: call +1 555 0100 now"),  # a fake second line
    "=?utf-8?q?URGENT=3A_wire_the_money_today?=",
    "Zoë =?iso-8859-1?q?Fran=E7ois?= Martin",  # non-ASCII around it
    "Amina =? Haddad ?= x",
]


def staff_copy(smtp_server, form_name: str) -> bytes:
    """The raw association email the SMTP server received."""
    inbox = f"{form_name}@cch.example.org"
    [received] = [message for message in smtp_server.messages if inbox in message.rcpt_tos]
    return received.data


@pytest.mark.parametrize("staff_language", ["fr", "en"])
@pytest.mark.parametrize("name", ENCODED_NAMES)
def test_a_name_typed_as_an_encoded_word_shows_literally_in_the_subject(make_app, smtp_server, staff_language, name):
    client = make_app(STAFF_LANGUAGE=staff_language).test_client()
    response = post(client, "volunteer", volunteer_form(name=name), JSON)
    assert response.status_code == 202
    shown = as_shown(staff_copy(smtp_server, "volunteer"))
    assert shown == {
        "Subject": VOLUNTEER_SUBJECTS[staff_language].format(name),
        "From": SENDER,
        "Reply-To": "amina@example.org",
    }


@pytest.mark.parametrize("staff_language", ["fr", "en"])
@pytest.mark.parametrize("name", ENCODED_NAMES)
def test_a_support_request_subject_carries_no_name_whatever_it_looks_like(make_app, smtp_server, staff_language, name):
    client = make_app(STAFF_LANGUAGE=staff_language).test_client()
    response = post(client, "support", support_form(name=name), JSON)
    assert response.status_code == 202
    data = staff_copy(smtp_server, "support")
    reference = response.get_json()["id"][:8]
    assert as_shown(data) == {
        "Subject": SUPPORT_SUBJECTS[staff_language].format(reference),
        "From": SENDER,
        "Reply-To": "aidworker@example.org",
    }
    assert name in smtp_server.messages[0].parsed().get_body(("plain",)).get_content()  # the body, literally


# Typed in a one-line field, these make a name display otherwise than it was typed.
BIDI_NAMES = [
    "\u202efdp.exe",
    "Sam \u202egnp.exe",
    "\u202aAmina\u202c",
    "Amina \u2066URGENT\u2069",
    "\u200fAmina",
    "Amina\u200e",
    "\u061cAmina",
    "\u202dx\u202b",
]


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize(
    ("name", "code"),
    [
        *((name, "bidi_controls") for name in BIDI_NAMES),
        ("Amina\u2028URGENT: call now", "single_line"),
        ("Amina\u2029URGENT", "single_line"),
        ("Amina\x85URGENT", "single_line"),
    ],
)
@pytest.mark.parametrize(("form_name", "make_form"), [("volunteer", volunteer_form), ("support", support_form)])
def test_a_name_that_would_display_otherwise_is_refused_in_the_submitters_language(
    client, smtp_server, language, name, code, form_name, make_form
):
    response = post(client, form_name, make_form(name=name, lang=language), JSON)
    expected = i18n.catalogue(language).gettext(FORMS[form_name]["name"].error(code))
    assert (response.status_code, response.get_json()["errors"]) == (400, {"name": expected})
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "address",
    [
        f"{encoded_word('boss@evil.example')}@example.org",
        "=?utf-8?q?boss=40evil.example?=@example.org",
        "x=?utf-8?q?y?=z@example.org",
    ],
)
@pytest.mark.parametrize(("form_name", "make_form"), [("volunteer", volunteer_form), ("support", support_form)])
def test_an_address_whose_local_part_is_an_encoded_word_is_refused(client, smtp_server, address, form_name, make_form):
    """Valid by RFC 5322, but clients decode it: Reply-To would show another person's address."""
    response = post(client, form_name, make_form(email=address, lang="fr"), JSON)
    expected = i18n.catalogue("fr").gettext(FORMS[form_name]["email"].error("email"))
    assert (response.status_code, response.get_json()["errors"]) == (400, {"email": expected})
    assert smtp_server.messages == []


@pytest.mark.parametrize("staff_language", ["fr", "en"])
def test_compose_shows_the_typed_name_even_without_validation(app, staff_language):
    """Defence in depth: bidi controls and separators dropped, an encoded word kept literal."""
    typed = f"\u202efdp.exe\u2028{encoded_word('URGENT')}\x85x\u2066y\u2069\x00z"
    submission = Submission(VOLUNTEER, {"name": typed, "email": "a@example.org", "motivation": "m", "consent": True})
    settings = MailSettings.from_config({**app.config, "STAFF_LANGUAGE": staff_language})
    association = compose(submission, "abc123", "en", settings)[0]
    literal = f"fdp.exe {encoded_word('URGENT')} xyz"
    assert as_shown(bytes(association.data))["Subject"] == VOLUNTEER_SUBJECTS[staff_language].format(literal)

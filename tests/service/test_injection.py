"""CR/LF anywhere never creates a header: in names, subject parts or file names."""

from __future__ import annotations

import io

import pytest

from forms_service.compose import MailSettings, compose
from forms_service.fields import SUPPORT, VOLUNTEER
from forms_service.uploads import inspect
from forms_service.validation import Submission
from tests import samples
from tests.service.helpers import JSON, deliver, post, support_form, volunteer_form

INJECTION = "Amina\r\nBcc: victim@example.org\r\nX-Evil: 1"


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"])
@pytest.mark.parametrize(("form_name", "make_form"), [("volunteer", volunteer_form), ("support", support_form)])
def test_any_line_break_in_a_one_line_field_is_refused_before_any_email(client, smtp_server, breaker, form_name,
                                                                        make_form):
    injection = f"Amina{breaker}Bcc: victim@example.org"
    response = post(client, form_name, make_form(name=injection, email=f"a@example.org{breaker}Bcc: v@example.org"),
                    JSON)
    assert response.status_code == 400
    assert sorted(response.get_json()["errors"]) == ["email", "name"]
    assert smtp_server.messages == []


def raw_multipart(fields: dict, file_header: str, file_data: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand, so the file part's header is exactly `file_header`."""
    boundary = "b0undary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f"--{boundary}\r\n{file_header}\r\nContent-Type: application/pdf\r\n\r\n".encode()
                 + file_data + f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_crlf_in_encoded_file_name_is_neutralised(client, smtp_server):
    """RFC 2231 lets a client encode CR/LF in a file name; it must not reach a header."""
    fields = {key: value for key, value in volunteer_form().items() if key != "resume"}
    header = ("Content-Disposition: form-data; name=\"resume\"; "
              "filename*=UTF-8''cv%0D%0ABcc%3A%20victim%40example.org%0D%0A.pdf")
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
    submission = Submission(VOLUNTEER, {"name": INJECTION.replace("\r\n", breaker), "email": "a@example.org",
                                        "motivation": "m", "consent": True}, document)
    mails = compose(submission, "abc123", "en", MailSettings.from_config(app.config))
    for mail in mails:
        names = header_names(mail.data)
        assert "bcc" not in names and "x-evil" not in names
        assert mail.recipients in (("volunteers@cch.example.org",), ("a@example.org",))


def test_support_subject_never_contains_what_was_typed(app):
    submission = Submission(SUPPORT, {"email": "secret.person@example.org", "name": "Secret Name",
                                      "message": "Secret message", "urgent": True, "consent": True})
    association = compose(submission, "s0meId_-xyz", "fr", MailSettings.from_config(app.config))[0]
    subject = association.data.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
    assert subject == "URGENT : demande de soutien s0meId_-"

"""MIME writing details that every email depends on, read back with the standard library."""

from __future__ import annotations

import email.policy
import os
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest

from forms_service import mime


def test_a_one_line_text_is_folded_with_crlf_only():
    """Postfix refuses bare LF (smtpd_forbid_bare_newline); quoted-printable soft breaks included."""
    content = "é" + "x" * 300
    written = mime.message([("Subject", "t")])
    written.set_content(content, cte="quoted-printable")
    data = written.as_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert message_from_bytes(data, policy=email.policy.SMTP).get_content().rstrip("\r\n") == content


@pytest.mark.parametrize("text", ["=?UTF-8?B?VVJHRU5U?=", "Re: =?utf-8?q?x?= and more", "=?", "Zoë =?x?q?y?="])
def test_text_shaped_like_an_encoded_word_is_encoded_so_it_decodes_to_itself(text):
    value = mime.header_value("Subject", text)
    assert value != text
    assert str(make_header(decode_header(value))) == text
    written = mime.message([("Subject", value)]).as_bytes()
    assert message_from_bytes(written, policy=email.policy.default)["Subject"] == text


def test_headers_are_written_as_given_not_parsed_again():
    """The email package would decode an encoded word it is handed as text (and show "URGENT")."""
    value = mime.header_value("Subject", "=?UTF-8?B?VVJHRU5U?=")
    assert mime.message([("Subject", value)]).as_bytes() == f"Subject: {value}\r\n\r\n".encode()


def test_addresses_are_never_written_as_encoded_words():
    """An addr-spec is not decoded (RFC 2047 §5): encoding one would only break it (validation
    refuses such submitted addresses; configured ones are the operator's)."""
    assert mime.header_value("To", "a=?b?=c@example.org") == "a=?b?=c@example.org"


def test_bidi_controls_and_other_invisible_characters_are_dropped():
    value = mime.header_value("Subject", "\u202efdp.exe\u2066\u200f\x00\x7f\x9b ok\u2028\x85next")
    assert value == "fdp.exe ok next"


@pytest.mark.parametrize("size", [1, 57, 58, 57 * 1024 + 1, 5 * 1024 * 1024 - 3])
def test_an_attachment_is_base64_in_crlf_lines_of_76_and_comes_back_byte_for_byte(size):
    data = os.urandom(size)
    written = mime.message([("Subject", "t")])
    written.set_content("Bonjour")
    written.add_attachment(data, "application", "pdf", filename="cv-zoë.pdf")
    message = written.as_bytes()
    attachment = message_from_bytes(message, policy=email.policy.default).get_payload()[1]
    assert b"\n" not in message.replace(b"\r\n", b"")
    assert {len(line) for line in attachment.get_payload().splitlines()[:-1]} <= {76}
    assert (attachment.get_content(), attachment.get_filename()) == (data, "cv-zoë.pdf")

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
    data = mime.message([("Subject", "t")], mime.text(content, "plain"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert message_from_bytes(data, policy=email.policy.SMTP).get_content().rstrip("\r\n") == content


@pytest.mark.parametrize("text", ["=?UTF-8?B?VVJHRU5U?=", "Re: =?utf-8?q?x?= and more", "=?", "Zoë =?x?q?y?="])
def test_text_shaped_like_an_encoded_word_is_encoded_so_it_decodes_to_itself(text):
    value = mime.header_value("Subject", text)
    assert value != text
    assert str(make_header(decode_header(value))) == text
    parsed = message_from_bytes(f"Subject: {value}\r\n\r\n".encode(), policy=email.policy.default)
    assert parsed["Subject"] == text


def test_addresses_are_never_written_as_encoded_words():
    """An addr-spec is not decoded (RFC 2047 §5): encoding one would only break it (validation
    refuses such submitted addresses; configured ones are the operator's)."""
    assert mime.header_value("To", "a=?b?=c@example.org") == "a=?b?=c@example.org"


def test_bidi_controls_and_other_invisible_characters_are_dropped():
    value = mime.header_value("Subject", "\u202efdp.exe\u2066\u200f\x00\x7f\x9b ok\u2028\x85next")
    assert value == "fdp.exe ok next"


SIZES = [0, 1, 2, 3, 56, 57, 58, 57 * 1024 - 1, 57 * 1024, 57 * 1024 + 1, 3 * 1024 * 1024 + 5, 5 * 1024 * 1024 - 3]


@pytest.mark.parametrize("size", [size for size in SIZES if size])  # empty: an empty body
def test_an_attachment_is_base64_in_crlf_lines_of_76(size):
    data = os.urandom(size)
    message = mime.message([("Subject", "t")], mime.attachment(data, "application/pdf", "cv.pdf"))
    body = message.split(b"\r\n\r\n", 1)[1]
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    assert {len(line) for line in body.split(b"\r\n")[:-2]} <= {76}
    assert message_from_bytes(message, policy=email.policy.default).get_content() == data

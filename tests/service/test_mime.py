"""MIME writing details that every email depends on, read back with the standard library."""

from __future__ import annotations

import email.policy
from email import message_from_bytes

from forms_service import mime


def test_a_one_line_text_is_folded_with_crlf_only():
    """Postfix refuses bare LF (smtpd_forbid_bare_newline); quoted-printable soft breaks included."""
    content = "é" + "x" * 300
    data = mime.message([("Subject", "t")], mime.text(content, "plain"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert message_from_bytes(data, policy=email.policy.SMTP).get_content().rstrip("\r\n") == content

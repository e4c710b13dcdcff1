"""Writing MIME messages as bytes, in the one shape this service sends, without parsing anything.

Not the email package's EmailMessage: its header registry parses and folds again every header, which doubles
what accepting a request costs (benchmarks/README.md, "Emails"), and decodes a typed encoded word. The package
still does every encoding that has rules (RFC 2047 words, RFC 2231 parameters, addresses, dates), and the tests
read each email back with it. Bodies are quoted-printable or base64, so no body line can be mistaken for a
boundary, whose "=_" prefix neither encoding produces.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import encode_rfc2231

CRLF = b"\r\n"
FOLD_AT = 78  # RFC 5322's recommended line length
# RFC 2231 continuation pieces of at most 20 characters or escapes (60 bytes), so that
# folded lines stay near FOLD_AT, never cutting a %XX escape in two.
PARAMETER_PIECE = re.compile(r"(?:%[0-9A-Fa-f]{2}|[^%]){1,20}")
# Unicode bidirectional formatting characters (a regex class): invisible, they make text
# display in another order, so "\u202efdp.exe" reads "exe.pdf".
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# What header_value drops once whitespace (line and paragraph separators, NEL included) is
# collapsed: the remaining control characters (Unicode Cc) and the bidi controls.
INVISIBLE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
ENCODED_WORD_START = "=?"  # RFC 2047: how every encoded word begins
# Headers whose value is addresses: an addr-spec is never an encoded word (RFC 2047 §5),
# so writing one as encoded words would only break it.
ADDRESS_HEADERS = frozenset({"From", "To", "Cc", "Reply-To"})


@dataclass(frozen=True)
class Entity:
    """A MIME entity: its Content-* header lines and its encoded body, in pieces joined once, by `message`."""

    headers: tuple[tuple[str, str], ...]
    chunks: tuple[bytes, ...]


def header_value(name: str, text: str) -> str:
    """`text` as an ASCII header value on one logical line: RFC 2047 encoded words when it is not ASCII,
    folded when long. Line breaks are collapsed first, so a value can never end its header line and start
    another; then invisible controls are dropped, so it displays in the order it was written. Text holding
    "=?" (but for addresses) is encoded too: a mail client would decode a typed "=?UTF-8?B?...?=" as whatever
    it encodes; inside a real encoded word it decodes to the literal characters typed.
    """
    text = INVISIBLE.sub("", " ".join(str(text).split()))
    literal = name in ADDRESS_HEADERS or ENCODED_WORD_START not in text
    if text.isascii() and literal and len(name) + len(text) + 2 <= FOLD_AT:
        return text
    charset = "us-ascii" if text.isascii() and literal else "utf-8"
    return Header(text, charset, header_name=name).encode(linesep="\r\n")


def text(content: str, subtype: str) -> Entity:
    """A UTF-8 text part, quoted-printable: readable when it is mostly ASCII, and 7-bit clean."""
    # b2a_qp takes its line ending from the first one it meets: end with CRLF so that
    # even a one-line text gets CRLF soft breaks, never a bare LF.
    data = _crlf(content.rstrip("\r\n").encode() + b"\n")
    headers = (("Content-Type", f'text/{subtype}; charset="utf-8"'), ("Content-Transfer-Encoding", "quoted-printable"))
    return Entity(headers, (binascii.b2a_qp(data, istext=True),))


def attachment(data: bytes, content_type: str, filename: str) -> Entity:
    """A file as a base64 attachment (lines of 76) under `filename` (already safe: uploads.safe_filename)."""
    headers = (
        ("Content-Type", content_type),
        ("Content-Disposition", f"attachment;{_filename_parameter(filename)}"),
        ("Content-Transfer-Encoding", "base64"),
    )
    return Entity(headers, (_crlf(base64.encodebytes(data)),))


def seven_bit(content_type: str, description: str, data: bytes) -> Entity:
    """An ASCII part sent as it is, its line ends made CRLF: the pieces of an OpenPGP/MIME envelope."""
    if not data.isascii():
        raise ValueError("a 7bit part must be ASCII")
    headers = (
        ("Content-Type", content_type),
        ("Content-Description", description),
        ("Content-Transfer-Encoding", "7bit"),
    )
    return Entity(headers, (_crlf(data),))


def multipart(subtype: str, parts: Sequence[Entity]) -> Entity:
    """A multipart entity holding `parts`, with a fresh random boundary (more parameters: with_parameter)."""
    boundary = f"=_{secrets.token_hex(12)}"
    chunks: list[bytes] = []
    delimiter = f"--{boundary}\r\n".encode()
    for part in parts:
        chunks += [delimiter, _header_lines(part.headers), CRLF, *part.chunks, CRLF]
    chunks.append(f"--{boundary}--\r\n".encode())
    return Entity((("Content-Type", f'multipart/{subtype}; boundary="{boundary}"'),), tuple(chunks))


def with_parameter(entity: Entity, parameter: str) -> Entity:
    """`entity` with one more parameter on its Content-Type (its first header)."""
    (name, value), *others = entity.headers
    return Entity(((name, f"{value}; {parameter}"), *others), entity.chunks)


def message(headers: Sequence[tuple[str, str]], body: Entity) -> bytes:
    """The whole message: `headers` (values from header_value or otherwise ASCII), MIME-Version, the body.
    Its pieces are joined once, here: an attachment is not copied at each level of nesting."""
    return b"".join([_header_lines([*headers, ("MIME-Version", "1.0"), *body.headers]), CRLF, *body.chunks])


def _crlf(data: bytes) -> bytes:
    """Every line ending as CRLF, as SMTP requires (a bare LF is refused by strict servers)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def _header_lines(headers: Sequence[tuple[str, str]]) -> bytes:
    """Header lines with CRLF; ASCII is enforced, so an unencoded value fails loudly here."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")


def _filename_parameter(filename: str) -> str:
    """The filename parameter on its own folded line(s): quoted when ASCII, else RFC 2231
    UTF-8, in numbered pieces since 100 characters of some scripts encode to over 998 bytes."""
    if filename.isascii():
        return f'\r\n filename="{filename}"'
    pieces = PARAMETER_PIECE.findall(encode_rfc2231(filename, "utf-8"))
    return ";".join(f"\r\n filename*{number}*={piece}" for number, piece in enumerate(pieces))

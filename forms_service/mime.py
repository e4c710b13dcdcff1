"""Writing MIME messages as bytes, in the one shape this service sends, without re-parsing.

The email package's modern API (policy.default / SMTP) parses every header
it is given through its header registry and folds it again when the message
is flattened: about 6 ms per email here, most of what accepting a submission
cost. Our emails have one fixed shape, so they are written directly; the
email package still does every encoding that has rules (RFC 2047 encoded
words, RFC 2231 parameters, addresses, dates), and the tests read each
result back with it.

Header values go through `header_value`, which collapses every line break
first: nothing a person typed can start a header. It also makes a mail client
show what was typed: no bidi control is left to reorder it, and text shaped
like an RFC 2047 encoded word is itself encoded, so a reader decodes it back
to the literal characters. Bodies are quoted-printable (text) or base64
(attachments), so messages are 7-bit clean and no body line can be mistaken
for a boundary, whose "=_" prefix neither encoding produces.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import encode_rfc2231

CRLF = b"\r\n"
BASE64_LINE = 76  # RFC 2045: at most 76 characters per encoded line
BASE64_BLOCK_LINES = 1024  # encoded at once: about 77 KB of output at 76 characters a line
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


class Base64Lines:
    """`data` as base64 lines of `line_length` characters (76 by default) ending in CRLF, encoded a block at a
    time as it is read.

    Its length is known without encoding, so a message holding a resumé is
    sealed into the spool while it is encoded: its 6.7 MB of base64 are never
    held whole beside the upload itself. OpenPGP's ASCII armor is the same
    encoding in lines of 64 (openpgp.py).
    """

    def __init__(self, data: bytes, line_length: int = BASE64_LINE):
        self.data = data
        self.line_length = line_length

    def __len__(self) -> int:
        full, rest = divmod(len(self.data), self._line_bytes)
        return full * (self.line_length + 2) + (-(-rest // 3) * 4 + 2 if rest else 0)

    @property
    def _line_bytes(self) -> int:
        return self.line_length // 4 * 3

    def __iter__(self) -> Iterator[bytes]:
        """The encoded lines, a block of 1024 whole lines (about 77 KB at 76 characters) at a time."""
        return map(self.encode, self.blocks())

    def blocks(self) -> Iterator[memoryview]:
        """The data in pieces of 1024 lines' worth, the last one shorter: what `encode` takes."""
        data = memoryview(self.data)
        size = self._line_bytes * BASE64_BLOCK_LINES
        return (data[start : start + size] for start in range(0, len(data), size))

    def encode(self, block: memoryview) -> bytes:
        """One of `blocks` as base64 lines ending in CRLF."""
        encoded = base64.b64encode(block)
        line = self.line_length
        return b"".join(encoded[at : at + line] + CRLF for at in range(0, len(encoded), line))


Chunk = bytes | Base64Lines


@dataclass(frozen=True)
class Entity:
    """A MIME entity: its Content-* header lines and its encoded body as chunks.

    Chunks are referenced by the entities holding this one and by the
    message, never copied (see Message).
    """

    headers: tuple[tuple[str, str], ...]
    chunks: tuple[Chunk, ...]


def header_value(name: str, text: str) -> str:
    """`text` as an ASCII header value on one logical line: RFC 2047 encoded
    words when it is not ASCII, folded when long. Line breaks are collapsed
    first, so a value can never end its header line and start another; then
    invisible controls are dropped, so it displays in the order it was written.

    Text holding "=?" (in a header that is not addresses) is encoded too: a mail
    client decodes anything shaped like an encoded word, and a typed
    "=?UTF-8?B?...?=" would show as whatever it encodes; inside a real encoded
    word it decodes to the literal characters typed.
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
    data = _crlf(content.rstrip("\r\n") + "\n").encode()
    headers = (("Content-Type", f'text/{subtype}; charset="utf-8"'), ("Content-Transfer-Encoding", "quoted-printable"))
    return Entity(headers, (binascii.b2a_qp(data, istext=True),))


def attachment(data: bytes, content_type: str, filename: str) -> Entity:
    """A file as a base64 attachment under `filename` (already safe: see uploads.safe_filename)."""
    headers = (
        ("Content-Type", content_type),
        ("Content-Disposition", f"attachment;{_filename_parameter(filename)}"),
        ("Content-Transfer-Encoding", "base64"),
    )
    return Entity(headers, (Base64Lines(data),))


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


def seven_bit(content_type: str, description: str, data: bytes) -> Entity:
    """An ASCII part sent as is, its line ends made CRLF: the pieces of an OpenPGP/MIME envelope."""
    if not data.isascii():
        raise ValueError("a 7bit part must be ASCII")
    return seven_bit_lines(content_type, description, (data.replace(b"\r\n", b"\n").replace(b"\n", CRLF),))


def seven_bit_lines(content_type: str, description: str, chunks: Sequence[Chunk]) -> Entity:
    """A part of `chunks` that are already ASCII lines ending in CRLF, sent as they are (7bit).

    So the armored ciphertext, as large as the resumé and a third more, is
    written a block at a time by whoever reads the message (openpgp.py).
    """
    headers = (
        ("Content-Type", content_type),
        ("Content-Description", description),
        ("Content-Transfer-Encoding", "7bit"),
    )
    return Entity(headers, tuple(chunks))


class Message:
    """A whole message as the chunks it is written from: its exact length without writing it, and
    its bytes a piece at a time (`iter`), an attachment's base64 encoded only as it is read.

    What the spool seals (sealing.Sealer.seal_into), so a resumé's encoding
    is never held whole; `bytes()` joins it, for what needs it whole (OpenPGP).
    """

    def __init__(self, chunks: Sequence[Chunk]):
        self.chunks = tuple(chunks)
        self._length = sum(map(len, self.chunks))

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if isinstance(chunk, Base64Lines):
                yield from chunk
            else:
                yield chunk

    def __bytes__(self) -> bytes:
        return b"".join(self)


def message(headers: Sequence[tuple[str, str]], body: Entity) -> Message:
    """The whole message: `headers` (values from header_value or otherwise ASCII), MIME-Version, the body.

    Written as it is read: each chunk is referenced, not copied, so a large
    attachment is not copied at each level of nesting, and its base64 is
    made a block at a time by whoever reads the message.
    """
    return Message([_header_lines([*headers, ("MIME-Version", "1.0"), *body.headers]), CRLF, *body.chunks])


def _crlf(text: str) -> str:
    """Every line ending as CRLF, as SMTP requires (a bare LF is refused by strict servers)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


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

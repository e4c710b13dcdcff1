"""Emails as the standard email package writes them (EmailMessage, policy.SMTP), headers as typed.

The package's header registry parses every header value it is given and
decodes whatever is shaped like an RFC 2047 encoded word: a name typed as
"=?UTF-8?B?VVJHRU5U?=" would reach the staff as "URGENT". So the headers we
write from what people typed are encoded here (`header_value`, with the
package's own Header) and written as they are (`Encoded`); bodies,
parameters, attachments and line endings (CRLF) are the package's.

`header_value` collapses every line break first: nothing a person typed can
start a header. It also makes a mail client show what was typed: no bidi
control is left to reorder it, and text shaped like an encoded word is
itself encoded, so a reader decodes it back to the literal characters.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage

POLICY = email.policy.SMTP  # CRLF line ends, lines folded at 78
FOLD_AT = 78  # RFC 5322's recommended line length
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
class Encoded:
    """A header value already encoded (ASCII, folded): the email package writes it as it is, since a
    value with a `name` and a `fold` method is taken as a parsed header (email.policy.EmailPolicy)."""

    name: str
    value: str

    def fold(self, *, policy: email.policy.Policy) -> str:
        return f"{self.name}: {self.value}{policy.linesep}"

    def __str__(self) -> str:
        return self.value


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


def message(headers: Sequence[tuple[str, str]]) -> EmailMessage:
    """A message with `headers` written exactly as given (values from header_value, or ASCII that needs
    no encoding), for the email package's content methods to fill."""
    written = EmailMessage(policy=POLICY)
    for name, value in headers:
        written[name] = Encoded(name, value)
    return written

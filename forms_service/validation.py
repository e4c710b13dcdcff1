"""Checking a posted form against its definition in fields.py: every rule comes from the Field objects, so what
the site renders as HTML constraints and what is enforced here cannot disagree. Problems are kept as msgids
plus values, translated only when the answer is written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from werkzeug.datastructures import MultiDict

from . import uploads
from .form_model import CHECKBOX, EMAIL, FILE, HIDDEN, HONEYPOT, SELECT, SINGLE_LINE_KINDS, Field, Form
from .i18n import Catalogue
from .mime import BIDI_CONTROLS

# Regular expressions, not loops over characters: a 5000-character message is
# checked on every submission.
LINE_BREAK = re.compile("[\r\n\u2028\u2029\x85\x0b\x0c]")
CONTROL_CHAR = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode category Cc, but for tab and newline
# One-line values are shown to the staff in headers (the name in a subject) and as short
# facts (a phone number): there, a bidi control only serves to make them read otherwise.
BIDI_CONTROL = re.compile(f"[{BIDI_CONTROLS}]")
# An RFC 2047 encoded word in a local part: "=?UTF-8?B?...?=@example.org" is a valid
# address, but mail clients decode it, and Reply-To would show someone else's address.
ENCODED_WORD = re.compile(r"=\?.*\?=")


@dataclass(frozen=True)
class Problem:
    """One refusal reason: a msgid and the values for its placeholders."""

    msgid: str
    values: dict = field(default_factory=dict)

    def text(self, catalogue: Catalogue) -> str:
        return catalogue.gettext(self.msgid, **self.values)


class Invalid(ValueError):
    """Raised by a field check; carries the error code and placeholder values."""

    def __init__(self, code: str, **values: object):
        super().__init__(code)
        self.code = code
        self.values = values


@dataclass
class Submission:
    """The cleaned values of a form post, the accepted document, and any problems."""

    form: Form
    values: dict[str, object] = field(default_factory=dict)
    document: uploads.Document | None = None
    errors: dict[str, Problem] = field(default_factory=dict)
    honeypot: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def reply_address(self) -> str | None:
        """The sender's validated address, if the form has one (Form.reply_to) and it was given."""
        return self.values.get(self.form.reply_to) if self.form.reply_to else None

    @property
    def text_bytes(self) -> int:
        """Size of what was typed, in UTF-8 bytes: loggable without revealing content."""
        return sum(len(str(value).encode()) for value in self.values.values())


def validate(form: Form, values: MultiDict, files: MultiDict) -> Submission:
    """Check every field of `form`; never raises on bad input, it records problems."""
    submission = Submission(form)
    for item in form.fields:
        if item.kind == HIDDEN:
            continue  # `lang` only steers negotiation, which tolerates any value
        if not item.is_asked(submission.values):
            continue  # a question not asked: whatever was sent for it is not kept
        source = files if item.kind == FILE else values
        posted = source.getlist(item.name)
        try:
            if len(posted) > 1:
                raise Invalid("repeated")
            _accept(submission, item, posted[0] if posted else None)
        except Invalid as problem:
            submission.errors[item.name] = Problem(item.error(problem.code), problem.values)
    return submission


def _accept(submission: Submission, item: Field, posted: object) -> None:
    """Store one field's cleaned value on the submission (or raise Invalid)."""
    if item.kind == FILE:
        submission.document = _document(item, posted)
    elif item.kind == HONEYPOT:
        submission.honeypot = bool(str(posted or "").strip())
    elif item.kind == CHECKBOX:
        ticked = bool(str(posted or "").strip())
        if item.required and not ticked:
            raise Invalid("required")
        submission.values[item.name] = ticked
    else:
        text = _text(item, str(posted or ""), item.is_required(submission.values))
        if text:
            submission.values[item.name] = text


def _text(item: Field, raw: str, required: bool) -> str:
    """A cleaned text value: NFC, trimmed, within limits, of the right shape for its kind; `required` may
    depend on an answer before it (Field.required_when)."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip()
    if not text:
        if required:
            raise Invalid("required")
        return ""
    if item.kind in SINGLE_LINE_KINDS and LINE_BREAK.search(text):
        raise Invalid("single_line")
    if CONTROL_CHAR.search(text):
        raise Invalid("control_chars")
    if item.kind in SINGLE_LINE_KINDS and BIDI_CONTROL.search(text):
        raise Invalid("bidi_controls")
    if item.max_length and len(text) > item.max_length:
        raise Invalid("too_long", max_length=item.max_length)
    if item.kind == EMAIL:
        return _email(text)
    if item.kind == SELECT and text not in {choice.value for choice in item.choices}:
        raise Invalid("choice")
    return text


def _email(text: str) -> str:
    """A syntactically valid address, normalised, ASCII-only on the wire (no DNS lookups)."""
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise Invalid("email") from None
    if ENCODED_WORD.search(checked.local_part):
        raise Invalid("email")
    return checked.ascii_email or checked.normalized


def _document(item: Field, storage: object) -> uploads.Document | None:
    """Read at most the cap plus one byte, then let uploads decide what it is."""
    filename = getattr(storage, "filename", None)
    data = storage.read(item.max_bytes + 1) if storage is not None else b""
    if not data and not filename:
        if item.required:
            raise Invalid("required")
        return None
    if len(data) > item.max_bytes:
        raise Invalid("file_too_big", max_megabytes=item.max_megabytes)
    try:
        return uploads.inspect(filename, data)
    except uploads.UploadRefused as refused:
        raise Invalid(refused.code) from None

"""What a form definition is made of, and the checks that refuse one that cannot work.

The forms themselves are defined in fields.py (README.md, "Adding a form").
Pure Python on purpose (no Flask): the MkDocs build imports both. Every text
is an English msgid translated through the PO catalogues.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def N_(msgid: str) -> str:
    """Mark a msgid for extraction without translating it yet (translated per request)."""
    return msgid


TEXT, EMAIL, TEL, TEXTAREA, SELECT, CHECKBOX, FILE, HIDDEN, HONEYPOT = (
    "text",
    "email",
    "tel",
    "textarea",
    "select",
    "checkbox",
    "file",
    "hidden",
    "honeypot",
)
SINGLE_LINE_KINDS = frozenset({TEXT, EMAIL, TEL, SELECT, HIDDEN, HONEYPOT})

MEGABYTE = 1024 * 1024

NO_CHOICE = N_("— choose —")
"""Label of the empty first option of a select: an optional choice may stay unanswered."""

ERRORS = MappingProxyType(
    {
        "required": N_("This field is required."),
        "too_long": N_("Please shorten this to at most {max_length} characters."),
        "single_line": N_("Please write this on a single line, without special control characters."),
        "control_chars": N_("This text contains invisible control characters; please remove them."),
        "bidi_controls": N_(
            "This text contains invisible characters that change the direction of writing; please remove them."
        ),
        "email": N_("Please enter a valid email address, for example name@example.org."),
        "choice": N_("Please choose one of the options offered."),
        "repeated": N_("This field was sent more than once; please send the form again from the page."),
        "file_type": N_("Please attach a PDF, DOCX or ODT document."),
        "file_too_big": N_("The file is larger than {max_megabytes} MB; please send a smaller one."),
        "file_empty": N_("The file is empty."),
        "file_macros": N_(
            "This document contains macros (small programs that run inside it), which we cannot accept; "
            "please export it as PDF, or save it as DOCX or ODT without macros."
        ),
        "file_active": N_(
            "This document loads or runs something by itself when it is opened (a linked picture, text or "
            "template, content kept up to date from another file or program, an embedded program or file, or a "
            "script), which we cannot accept; please export it again as PDF from your word processor. "
            "Links are fine."
        ),
        "file_encrypted": N_(
            "This document is protected by a password, so we cannot open it; please send it without a password."
        ),
        "file_damaged": N_(
            "This document seems damaged or is unusually complex, so we could not check it; "
            "please export it again as PDF, DOCX or ODT."
        ),
    }
)
"""Refusal code (validation.py, uploads.py) -> msgid, unless a field has its own; placeholders are filled
with the field's limits."""


@dataclass(frozen=True)
class FileType:
    """A document type we accept: the name the site shows, extension, MIME type."""

    name: str
    extension: str
    mime: str


# The types uploads.py can check.
PDF = FileType("PDF", "pdf", "application/pdf")
DOCX = FileType("DOCX", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
ODT = FileType("ODT", "odt", "application/vnd.oasis.opendocument.text")
DOCUMENT_TYPES = (PDF, DOCX, ODT)


@dataclass(frozen=True)
class Choice:
    """One option of a select: the submitted value and its label msgid."""

    value: str
    label: str


Condition = tuple[str, tuple[str, ...]]
"""(field name, values): holds when that field's submitted value is one of the values."""


def _holds(condition: Condition, values: Mapping[str, object]) -> bool:
    name, expected = condition
    return values.get(name) in expected


@dataclass(frozen=True)
class Field:
    """One form field: what the HTML form renders and what the service enforces."""

    name: str
    kind: str
    label: str = ""
    required: bool = False
    max_length: int | None = None
    hint: str | None = None
    choices: tuple[Choice, ...] = ()
    accept: tuple[FileType, ...] = ()
    max_bytes: int | None = None
    autocomplete: str | None = None
    purpose: str | None = None
    """Why we ask for it: the privacy page lists every visible field with this text."""
    staff_label: str | None = None
    """A shorter label for the coordinators' email, where the form's speaks to the person filling it in."""
    required_when: Condition | None = None
    """Required only when another field holds one of some values: ("contact", ("phone", "video"))."""
    shown_when: Condition | None = None
    """Asked only when another field holds one of some values; otherwise what it holds is dropped."""
    errors: Mapping[str, str] = field(default_factory=dict, compare=False)
    """This field's own texts for some refusal codes, in place of those of ERRORS."""

    @property
    def max_megabytes(self) -> int | None:
        """The file cap in whole MB, as people read it."""
        return self.max_bytes // MEGABYTE if self.max_bytes else None

    @property
    def accept_attribute(self) -> str:
        """The HTML `accept` value for the site build: extensions and MIME types accepted."""
        return ",".join(f".{kind.extension},{kind.mime}" for kind in self.accept)

    def is_required(self, values: Mapping[str, object]) -> bool:
        """Whether it must be filled in, given the cleaned values of the fields before it."""
        return self.required or (self.required_when is not None and _holds(self.required_when, values))

    def is_asked(self, values: Mapping[str, object]) -> bool:
        """Whether it is asked at all, given the cleaned values of the fields before it."""
        return self.shown_when is None or _holds(self.shown_when, values)

    def error(self, code: str) -> str:
        """The msgid for a refusal code: the field's own, else ERRORS'."""
        return self.errors.get(code) or ERRORS[code]

    def choice_label(self, value: str) -> str:
        """The label msgid of a submitted choice value."""
        return next(choice.label for choice in self.choices if choice.value == value)


@dataclass(frozen=True)
class Acknowledgement:
    """The fixed email a submitter gets back: a subject and paragraphs, none repeating what they typed
    (compose.py adds the request's reference); `guidance`, a lead then the items of a list after them:
    the crisis guidance of the site's crisis box, for a form people may write to in distress."""

    subject: str
    paragraphs: tuple[str, ...]
    guidance: tuple[str, ...] = ()


@dataclass(frozen=True)
class Urgency:
    """A checkbox that marks a submission urgent: it then also goes to FORMS_URGENT_RECIPIENTS,
    under subjects of its own (placeholders as Form.subject)."""

    field: str
    subject: str
    sealed_subject: str


class DefinitionError(ValueError):
    """A Form that cannot work as defined; raised on import, so the site build and the service both stop."""


@dataclass(frozen=True)
class Form:
    """A whole form: its fields in display order, the pages around it and the emails it makes (each
    attribute: README.md, "Adding a form"). `uses_reserve`: its posts may fill the spool's reserve
    (FORMS_SPOOL_RESERVE_BYTES) that a flood of the other forms can never take."""

    name: str
    title: str
    fields: tuple[Field, ...]
    page: str
    thanks_page: str
    subject: str
    sealed_subject: str
    reply_to: str | None = None
    acknowledgement: Acknowledgement | None = None
    urgent: Urgency | None = None
    submit_label: str = N_("Send")
    uses_reserve: bool = False

    def __post_init__(self) -> None:
        _check(self)

    def __getitem__(self, name: str) -> Field:
        return next(item for item in self.fields if item.name == name)

    @property
    def recipients_setting(self) -> str:
        """The setting (without FORMS_) listing who receives this form: FORMS_<NAME>_RECIPIENTS."""
        return f"{self.name.upper()}_RECIPIENTS"

    @property
    def takes_file(self) -> bool:
        """Whether a post of this form carries a file: worked on only within an upload slot, never told of a CV
        otherwise."""
        return any(item.kind == FILE for item in self.fields)

    @property
    def visible_fields(self) -> tuple[Field, ...]:
        """Fields a person fills in (what the association email lays out and the privacy page lists)."""
        return tuple(item for item in self.fields if item.kind not in (HIDDEN, HONEYPOT))

    @property
    def msgids(self) -> frozenset[str]:
        """Every text of the definition a person may see, for the catalogue checks."""
        texts = [self.title, self.subject, self.sealed_subject, self.submit_label]
        if self.acknowledgement:
            texts += [self.acknowledgement.subject, *self.acknowledgement.paragraphs, *self.acknowledgement.guidance]
        if self.urgent:
            texts += [self.urgent.subject, self.urgent.sealed_subject]
        for item in self.fields:
            texts += [item.label, item.hint, item.purpose, item.staff_label, *(c.label for c in item.choices)]
        return frozenset(text for text in texts if text)


def _check(form: Form) -> None:
    """What a definition must hold for the site, the privacy page and the service to work from it alone."""
    names = [item.name for item in form.fields]

    def fail(problem: str) -> None:
        raise DefinitionError(f"form {form.name!r}: {problem}")

    if not form.name.isidentifier():
        fail("its name must be letters, digits and underscores (it is a URL segment and a setting name)")
    if len(set(names)) != len(names):
        fail("two fields share a name")
    if form.reply_to is not None and (form.reply_to not in names or form[form.reply_to].kind != EMAIL):
        fail(f"reply_to {form.reply_to!r} is not an email field of the form")
    if (form.reply_to is None) != (form.acknowledgement is None):
        fail("an acknowledgement needs a reply_to address, and a reply_to address an acknowledgement")
    if form.urgent and (form.urgent.field not in names or form[form.urgent.field].kind != CHECKBOX):
        fail(f"urgent field {form.urgent.field!r} is not a checkbox of the form")
    subjects = [
        form.subject,
        form.sealed_subject,
        *((form.urgent.subject, form.urgent.sealed_subject) if form.urgent else ()),
    ]
    for subject in subjects:
        placeholders = {name for _, name, _, _ in string.Formatter().parse(subject) if name is not None}
        if not placeholders <= {"reference", *names}:
            fail(f"subject {subject!r} names something that is neither a field nor {{reference}}")
    for item in form.visible_fields:
        if not item.purpose:
            fail(f"field {item.name!r} has no purpose: the privacy page must say why it is asked for")
        for condition in (item.required_when, item.shown_when):
            _check_condition(form, item, condition, fail)


def _check_condition(form: Form, item: Field, condition: Condition | None, fail) -> None:
    """A condition names an earlier select of the form and some of its choices: the browser reads
    the answer before the field, and the service has cleaned it before checking the field."""
    if condition is None:
        return
    name, values = condition
    earlier = [field.name for field in form.fields[: form.fields.index(item)]]
    if name not in earlier or form[name].kind != SELECT:
        fail(f"field {item.name!r} depends on {name!r}, which is not a select before it")
    if not values or not set(values) <= {choice.value for choice in form[name].choices}:
        fail(f"field {item.name!r} depends on values {values!r} that {name!r} does not offer")
    if item.required:
        fail(f"field {item.name!r} is both always required and conditional")

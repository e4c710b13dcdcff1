"""The one definition of both forms, shared by the site build and the service.

Pure Python on purpose (no Flask): the MkDocs build imports this module to
render the HTML forms, and the service validates against the very same
objects, so the page can never drift from what the service accepts.
Every text is an English msgid translated through the PO catalogues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def N_(msgid: str) -> str:
    """Mark a msgid for extraction without translating it yet (translated per request)."""
    return msgid


TEXT, EMAIL, TEL, TEXTAREA, SELECT, CHECKBOX, FILE, HIDDEN, HONEYPOT = (
    "text", "email", "tel", "textarea", "select", "checkbox", "file", "hidden", "honeypot",
)
SINGLE_LINE_KINDS = frozenset({TEXT, EMAIL, TEL, SELECT, HIDDEN, HONEYPOT})

MEGABYTE = 1024 * 1024
RESUME_MAX_BYTES = 5 * MEGABYTE
LONG_TEXT_MAX = 5000

NO_CHOICE = N_("— choose —")
"""Label of the empty first option of a select: an optional choice may stay unanswered."""

ERRORS = MappingProxyType({
    "required": N_("This field is required."),
    "too_long": N_("Please shorten this to at most {max_length} characters."),
    "single_line": N_("Please write this on a single line, without special control characters."),
    "control_chars": N_("This text contains invisible control characters; please remove them."),
    "bidi_controls": N_("This text contains invisible characters that change the direction of writing; "
                        "please remove them."),
    "email": N_("Please enter a valid email address, for example name@example.org."),
    "choice": N_("Please choose one of the options offered."),
    "repeated": N_("This field was sent more than once; please send the form again from the page."),
    "file_type": N_("Please attach a PDF, DOCX or ODT document."),
    "file_too_big": N_("The file is larger than {max_megabytes} MB; please send a smaller one."),
    "file_empty": N_("The file is empty."),
    "file_macros": N_("Documents with macros are not accepted; please save it as PDF, DOCX or ODT without macros."),
    "file_encrypted": N_("Password-protected documents cannot be read; please send it without a password."),
    "file_damaged": N_("This document seems damaged; please export it again as PDF, DOCX or ODT."),
    "consent": N_("Please tick this box so that we may process what you send."),
})
"""Error code -> msgid; placeholders are filled with the field's limits."""


@dataclass(frozen=True)
class FileType:
    """A document type we accept: the name the site shows, extension, MIME type."""

    name: str
    extension: str
    mime: str


PDF = FileType("PDF", "pdf", "application/pdf")
DOCX = FileType("DOCX", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
ODT = FileType("ODT", "odt", "application/vnd.oasis.opendocument.text")
DOCUMENT_TYPES = (PDF, DOCX, ODT)


@dataclass(frozen=True)
class Choice:
    """One option of a select: the submitted value and its label msgid."""

    value: str
    label: str


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
    errors: Mapping[str, str] = field(default_factory=lambda: ERRORS, compare=False)

    @property
    def max_megabytes(self) -> int | None:
        """The file cap in whole MB, as people read it."""
        return self.max_bytes // MEGABYTE if self.max_bytes else None

    @property
    def accept_attribute(self) -> str:
        """The HTML `accept` value for the site build: extensions and MIME types accepted."""
        return ",".join(f".{kind.extension},{kind.mime}" for kind in self.accept)

    def error(self, code: str) -> str:
        """The msgid for an error code, with the field's own override if it has one."""
        return self.errors[code]

    def choice_label(self, value: str) -> str:
        """The label msgid of a submitted choice value."""
        return next(choice.label for choice in self.choices if choice.value == value)


@dataclass(frozen=True)
class Form:
    """A whole form: its fields in display order and the pages around it."""

    name: str
    title: str
    fields: tuple[Field, ...]
    page: str
    thanks_page: str
    submit_label: str = N_("Send")

    def __getitem__(self, name: str) -> Field:
        return next(item for item in self.fields if item.name == name)

    @property
    def visible_fields(self) -> tuple[Field, ...]:
        """Fields a person fills in (what the association email lays out)."""
        return tuple(item for item in self.fields if item.kind not in (HIDDEN, HONEYPOT))


LANG = Field("lang", HIDDEN, max_length=16)
HONEYPOT_FIELD = Field(
    "website", HONEYPOT, label=N_("Leave this field empty"), max_length=200, autocomplete="off"
)


def _consent(label: str) -> Field:
    """The consent checkbox; its text names the purpose so the question "why" is answered."""
    return Field("consent", CHECKBOX, label=label, required=True, errors=MappingProxyType({
        **ERRORS, "required": ERRORS["consent"],
    }))


VOLUNTEER = Form(
    name="volunteer",
    title=N_("Volunteer application"),
    page="/volunteer.html",
    thanks_page="/volunteer-thanks.html",
    submit_label=N_("Send my application"),
    fields=(
        Field("name", TEXT, N_("Full name"), required=True, max_length=200, autocomplete="name"),
        Field("email", EMAIL, N_("Email address"), required=True, max_length=254, autocomplete="email",
              hint=N_("We only use it to answer you.")),
        Field("motivation", TEXTAREA, N_("Your motivation"), required=True, max_length=LONG_TEXT_MAX,
              hint=N_("Why would you like to become a peer supporter? (5000 characters at most)")),
        Field("resume", FILE, N_("Your resumé"), required=True, accept=DOCUMENT_TYPES,
              max_bytes=RESUME_MAX_BYTES, hint=N_("PDF, DOCX or ODT, 5 MB at most.")),
        Field("languages", TEXT, N_("Languages you speak"), max_length=300,
              hint=N_("For example: English, French, Arabic.")),
        Field("location", TEXT, N_("Country or time zone"), max_length=200, autocomplete="country-name",
              hint=N_("So that we can match you with people in compatible time zones.")),
        Field("availability", TEXT, N_("Availability"), max_length=500,
              hint=N_("The role asks for 2 to 4 hours a week. When are you usually available?")),
        Field("training", TEXTAREA, N_("Relevant training or experience"), max_length=2000,
              hint=N_("For example: peer support, psychological first aid, counselling, field experience.")),
        _consent(N_("I agree that CoCreate Humanity uses these details, including my resumé, "
                    "only to consider my application, as the privacy policy explains.")),
        LANG,
        HONEYPOT_FIELD,
    ),
)

SITUATIONS = (
    Choice("before_mission", N_("Before a mission")),
    Choice("on_mission", N_("On a mission")),
    Choice("between_missions", N_("Between two missions")),
    Choice("leaving_sector", N_("Leaving the humanitarian sector")),
    Choice("retired", N_("Retired")),
    Choice("other", N_("Other")),
)

PEER_LANGUAGES = (
    Choice("fr", N_("French")),
    Choice("en", N_("English")),
    Choice("ar", N_("Arabic")),
    Choice("es", N_("Spanish")),
    Choice("de", N_("German")),
    Choice("it", N_("Italian")),
    Choice("other", N_("Other")),
)

CONTACT_WAYS = (
    Choice("email", N_("By email")),
    Choice("phone", N_("By phone")),
    Choice("video", N_("By video call")),
)

SUPPORT = Form(
    name="support",
    title=N_("Request for peer support"),
    page="/support.html",
    thanks_page="/support-thanks.html",
    submit_label=N_("Send my request"),
    fields=(
        Field("email", EMAIL, N_("Email address"), required=True, max_length=254, autocomplete="email",
              hint=N_("We only use it to answer you.")),
        Field("name", TEXT, N_("First name or pseudonym"), max_length=100, autocomplete="given-name",
              hint=N_("Optional: any name you would like us to use.")),
        Field("message", TEXTAREA, N_("Your message"), max_length=LONG_TEXT_MAX,
              hint=N_("Optional: say as much or as little as you wish (5000 characters at most).")),
        Field("situation", SELECT, N_("Your situation"), choices=SITUATIONS,
              hint=N_("Optional: it helps us find a peer who knows your situation.")),
        Field("preferred_language", SELECT, N_("Preferred language"), choices=PEER_LANGUAGES),
        Field("contact", SELECT, N_("Preferred way to be contacted"), choices=CONTACT_WAYS),
        Field("phone", TEL, N_("Phone number"), max_length=40, autocomplete="tel",
              hint=N_("Only if you prefer a phone or video call; include the country code.")),
        Field("urgent", CHECKBOX, N_("This is urgent: please contact me as soon as possible"),
              hint=N_("We still cannot answer at once: if you are in danger, call the emergency numbers "
                      "at the top of this page now.")),
        _consent(N_("I agree that CoCreate Humanity uses these details only to answer my request, "
                    "as the privacy policy explains.")),
        LANG,
        HONEYPOT_FIELD,
    ),
)

FORMS = MappingProxyType({form.name: form for form in (VOLUNTEER, SUPPORT)})

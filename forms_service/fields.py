"""The one definition of every form, shared by the site build and the service.

Pure Python on purpose (no Flask): the MkDocs build imports this module to
render the HTML forms and the privacy page's list of what each form
collects, and the service routes, validates and composes from the very same
objects, so neither the page nor the policy can drift from what the service
accepts. Every text is an English msgid translated through the PO catalogues.
Adding a form is adding a Form to FORMS (README.md, "Adding a form").
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
RESUME_MAX_BYTES = 5 * MEGABYTE
LONG_TEXT_MAX = 5000

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
        "consent": N_("Please tick this box so that we may process what you send."),
    }
)
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
    errors: Mapping[str, str] = field(default_factory=lambda: ERRORS, compare=False)

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
        """The msgid for an error code, with the field's own override if it has one."""
        return self.errors[code]

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
    """A whole form: its fields in display order, the pages around it and the emails it makes.

    `subject` is the coordinators' subject; its placeholders are `{reference}`
    (the first characters of the submission id) or field names: a form whose
    senders may be in distress names only the reference. `sealed_subject` is
    what shows outside an OpenPGP-encrypted email. `reply_to` names the EMAIL
    field that is the sender's address (Reply-To, and the acknowledgement);
    a form without one sends no acknowledgement. `uses_reserve`: its posts may
    fill the spool's reserve (FORMS_SPOOL_RESERVE_BYTES) that a flood of the
    other forms can never take, so that a request for help still gets in.
    """

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


def _placeholders(msgid: str) -> set[str]:
    return {name for _text, name, _spec, _conversion in string.Formatter().parse(msgid) if name is not None}


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
        if not _placeholders(subject) <= {"reference", *names}:
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


LANG = Field("lang", HIDDEN, max_length=16)
HONEYPOT_FIELD = Field("website", HONEYPOT, label=N_("Leave this field empty"), max_length=200, autocomplete="off")


def _consent(label: str) -> Field:
    """The consent checkbox; its text names the purpose so the question "why" is answered."""
    return Field(
        "consent",
        CHECKBOX,
        label=label,
        required=True,
        staff_label=N_("Consent to the privacy policy"),
        purpose=N_("To let you agree, knowingly, to our handling this information as described on this page."),
        errors=MappingProxyType({**ERRORS, "required": ERRORS["consent"]}),
    )


VOLUNTEER = Form(
    name="volunteer",
    title=N_("Become a volunteer"),
    page="/volunteer.html",
    thanks_page="/volunteer-thanks.html",
    submit_label=N_("Send my application"),
    # The applicant's name helps the coordinators sort applications.
    subject=N_("Volunteer application from {name}"),
    sealed_subject=N_("New volunteer application (encrypted)"),
    reply_to="email",
    acknowledgement=Acknowledgement(
        subject=N_("We have received your application"),
        paragraphs=(
            N_("Thank you for your interest in becoming a volunteer peer supporter with CoCreate Humanity."),
            N_("We have received your application. A member of our team will read it and answer you by email."),
        ),
    ),
    fields=(
        Field(
            "name",
            TEXT,
            N_("Full name"),
            required=True,
            max_length=200,
            autocomplete="name",
            purpose=N_("To know who is applying."),
        ),
        Field(
            "email",
            EMAIL,
            N_("Email address"),
            required=True,
            max_length=254,
            autocomplete="email",
            hint=N_("We only use it to answer you."),
            purpose=N_("To reply to you and send you the acknowledgement."),
        ),
        Field(
            "motivation",
            TEXTAREA,
            N_("Your motivation"),
            required=True,
            max_length=LONG_TEXT_MAX,
            hint=N_("Why would you like to become a peer supporter? (5000 characters at most)"),
            purpose=N_("To understand why you would like to become a peer supporter."),
            staff_label=N_("Motivation"),
        ),
        Field(
            "resume",
            FILE,
            N_("Your CV"),
            required=True,
            accept=DOCUMENT_TYPES,
            max_bytes=RESUME_MAX_BYTES,
            hint=N_(
                "PDF, DOCX or ODT, 5 MB at most. Links are fine, but not macros, passwords, or linked pictures "
                "and templates the file loads when opened: if yours is refused, export it as PDF."
            ),
            purpose=N_("To learn about your background and experience."),
            staff_label=N_("CV (attached)"),
        ),
        Field(
            "languages",
            TEXT,
            N_("Languages you speak"),
            max_length=300,
            hint=N_("For example: English, French, Arabic."),
            purpose=N_("To know in which languages you could listen to your peers."),
        ),
        Field(
            "location",
            TEXT,
            N_("Country or time zone"),
            max_length=200,
            autocomplete="country-name",
            hint=N_("For example: Kenya, or UTC+3."),
            purpose=N_("To know where you are based."),
        ),
        Field(
            "availability",
            TEXT,
            N_("Availability"),
            max_length=500,
            hint=N_("The role asks for 2 to 4 hours a week. When are you usually available?"),
            purpose=N_("To know when you could give your time."),
        ),
        Field(
            "training",
            TEXTAREA,
            N_("Relevant training or experience"),
            max_length=2000,
            hint=N_("For example: peer support, psychological first aid, counselling, field experience."),
            purpose=N_(
                "To know about your training, for example in mental health first aid, coaching or psychosocial support."
            ),
        ),
        _consent(
            N_(
                "I agree that CoCreate Humanity uses these details, including my CV, "
                "only to consider my application, as the privacy policy explains."
            )
        ),
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
    title=N_("Ask for a listening ear"),
    page="/support.html",
    thanks_page="/support-thanks.html",
    submit_label=N_("Send my request"),
    # People in distress write here: subjects carry the reference only, never what they typed.
    subject=N_("Support request {reference}"),
    sealed_subject=N_("New support request (encrypted)"),
    urgent=Urgency(
        "urgent",
        subject=N_("URGENT: support request {reference}"),
        sealed_subject=N_("URGENT: new support request (encrypted)"),
    ),
    reply_to="email",
    uses_reserve=True,  # a few KB each: uploads flooding the spool must never lock out a request for help
    acknowledgement=Acknowledgement(
        subject=N_("We have received your request"),
        paragraphs=(
            N_("Thank you for reaching out to CoCreate Humanity."),
            N_("We have received your request. A peer supporter will contact you as soon as possible, in confidence."),
        ),
        # The support page's crisis box (docs/<lang>/support.md), in the same words.
        guidance=(
            N_(
                "This is not an emergency service: we cannot answer straight away. If your life or someone "
                "else's is in danger, or if you are thinking of harming yourself, get help now:"
            ),
            N_(
                "in Switzerland, call 143 to talk to someone, day and night (Die Dargebotene Hand / La Main "
                "Tendue), 144 for a medical emergency, or 112, the European emergency number;"
            ),
            N_("in the European Union, call 112;"),
            N_(
                "elsewhere, call the local emergency number, or find a helpline in your country on "
                "findahelpline.com, an international directory of helplines;"
            ),
            N_("on mission, also contact your organisation's medical service or staff-care service."),
        ),
    ),
    fields=(
        Field(
            "email",
            EMAIL,
            N_("Email address"),
            required=True,
            max_length=254,
            autocomplete="email",
            hint=N_(
                "We only use it to answer you. A personal address is safer than a work one: our reply will go there."
            ),
            purpose=N_("To reply to you."),
        ),
        # "nickname", not "given-name": the browser must not offer the legal name it knows.
        Field(
            "name",
            TEXT,
            N_("First name or pseudonym"),
            max_length=100,
            autocomplete="nickname",
            hint=N_("Optional: any name you would like us to use."),
            purpose=N_("To know what to call you. Your full name is not needed."),
        ),
        Field(
            "message",
            TEXTAREA,
            N_("Your message"),
            max_length=LONG_TEXT_MAX,
            hint=N_("Optional: say as much or as little as you wish (5000 characters at most)."),
            purpose=N_("To tell us, if you wish, what you are going through."),
        ),
        Field(
            "situation",
            SELECT,
            N_("Your situation"),
            choices=SITUATIONS,
            hint=N_("Optional: it helps us find a peer who knows your situation."),
            purpose=N_("To understand your context and find the most suitable peer for you."),
        ),
        Field(
            "preferred_language",
            SELECT,
            N_("Preferred language"),
            choices=PEER_LANGUAGES,
            purpose=N_("To put you in touch, where possible, with a peer who speaks your language."),
        ),
        Field(
            "other_language",
            TEXT,
            N_("Which other language?"),
            max_length=100,
            shown_when=("preferred_language", ("other",)),
            hint=N_("Only if you chose “Other” as your preferred language."),
            purpose=N_("To know your language when it is not in the list."),
            staff_label=N_("Other language"),
        ),
        Field(
            "contact",
            SELECT,
            N_("Preferred way to be contacted"),
            choices=CONTACT_WAYS,
            purpose=N_("To reach you in the way that suits you."),
        ),
        Field(
            "phone",
            TEL,
            N_("Phone number"),
            max_length=40,
            autocomplete="tel",
            required_when=("contact", ("phone", "video")),
            hint=N_("Needed if you prefer a phone or video call; include the country code."),
            purpose=N_("To call you, if you prefer a phone or video call."),
            errors=MappingProxyType(
                {
                    **ERRORS,
                    "required": N_(
                        "Please give a phone number so that we can call you, or choose to be contacted by email."
                    ),
                }
            ),
        ),
        Field(
            "urgent",
            CHECKBOX,
            N_("This is urgent: please contact me as soon as possible"),
            # The crisis guidance again where a reader in danger looks: the numbers themselves,
            # as in the support page's box (docs/<lang>/support.md), not a pointer to them.
            hint=N_(
                "We still cannot answer at once. If you are in danger, call now: in Switzerland 144 "
                "(medical emergency) or 143 (someone to talk to, day and night); in the European Union "
                "112; elsewhere your local emergency number, or a helpline listed on findahelpline.com."
            ),
            purpose=N_(
                "To let the association know that your request is pressing. This still does not "
                "make it an emergency service."
            ),
            staff_label=N_("Marked as urgent"),
        ),
        _consent(
            N_(
                "I agree that CoCreate Humanity uses these details only to answer my request, "
                "as the privacy policy explains."
            )
        ),
        LANG,
        HONEYPOT_FIELD,
    ),
)

FORMS = MappingProxyType({form.name: form for form in (VOLUNTEER, SUPPORT)})

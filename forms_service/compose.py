"""Writing the emails a submission produces: one to the association, one acknowledgement (what each says is
part of the form's definition, fields.py).

Composed once, at acceptance, into exact bytes (OutgoingMail), so nothing that later holds or sends them needs
the form again. On every submission's path, so cheap: mime.py writes them, and an acknowledgement's texts (the
same for everyone who writes in one language, but the reference) are translated once per form and language.
Header values come from validated data, flattened to one line: nothing typed can add a header.
"""

from __future__ import annotations

import email.utils
import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from . import i18n, mime
from .fields import FORMS, PEER_LANGUAGES
from .form_model import FILE, N_, Acknowledgement, Form
from .openpgp import Keyring, encrypt_mime
from .outgoing import ACKNOWLEDGEMENT, ASSOCIATION, OutgoingMail
from .validation import Submission

REFERENCE_CHARS = 8

# Lines of the association's email when a daily quota left an email out.
ACK_SKIPPED = N_(
    "No acknowledgement was sent to this address: it already received the most allowed in 24 hours "
    "(a protection against using the form to flood someone's inbox)."
)
PAGE_SKIPPED = N_(
    "The on-call address was not alerted: this connection already sent the most urgent requests "
    "allowed in 24 hours. The request is still urgent."
)

ACKNOWLEDGEMENT_REFERENCE = N_(
    "The reference of your message: {reference}. Please give it if you write to us about it."
)
ACKNOWLEDGEMENT_END = (
    N_("For your privacy, this message does not repeat what you wrote."),
    N_("If you did not send this form, you can ignore this message."),
)
# A number to call in the guidance, a link a phone dials in the HTML body.
PHONE_NUMBER = re.compile(r"\b(\d{3})\b")
# The msgid naming a site language, for the "submitted in ..." line.
LANGUAGE_NAMES = {choice.value: choice.label for choice in PEER_LANGUAGES}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("forms_service", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the code: no stat() of each file on every email
)
i18n.install(_templates)
_templates.filters["dial"] = lambda text: Markup(PHONE_NUMBER.sub(r'<a href="tel:\1">\1</a>', str(escape(text))))


@dataclass(frozen=True)
class MailSettings:
    """What composition needs from the configuration; `keyring`: the vetted FORMS_PGP_KEYS, when set."""

    sender: str
    recipients: dict[str, tuple[str, ...]]
    urgent_recipients: tuple[str, ...]
    message_id_host: str
    staff_language: str
    keyring: Keyring | None = None
    bounce_address: str | None = None

    @classmethod
    def from_config(cls, config, keyring=None) -> MailSettings:
        return cls(
            sender=config["MAIL_DEFAULT_SENDER"],
            recipients={name: tuple(config[form.recipients_setting]) for name, form in FORMS.items()},
            urgent_recipients=tuple(config["URGENT_RECIPIENTS"]),
            message_id_host=urlsplit(config["SITE_URL"]).hostname,
            staff_language=config["STAFF_LANGUAGE"],
            keyring=keyring,
            bounce_address=config["MAIL_ENVELOPE_FROM"],
        )

    @functools.cached_property
    def envelope_sender(self) -> str:
        """MAIL FROM, where bounces go: FORMS_MAIL_ENVELOPE_FROM (a monitored mailbox), else From's address."""
        return self.bounce_address or email.utils.parseaddr(self.sender)[1]

    @functools.cached_property
    def from_header(self) -> str:
        """The From value, worked out once: a non-ASCII display name as RFC 2047 encoded
        words of at most 75 characters each (formataddr would write one word of any length)."""
        name, address = email.utils.parseaddr(self.sender)
        if name.isascii():
            return mime.header_value("From", email.utils.formataddr((name, address)))
        return f"{mime.header_value('From', name)} <{address}>"


def compose(
    submission: Submission,
    submission_id: str,
    language: str,
    settings: MailSettings,
    *,
    acknowledge: bool = True,
    page_on_call: bool = True,
) -> list[OutgoingMail]:
    """The association's email first (never left out), then the submitter's acknowledgement, if the form has
    a reply address and it was given. Past their daily quotas (ratelimit.py) the acknowledgement is left out,
    or an urgent request goes to the form's recipients only, and the association's email says so. Raises
    openpgp.NoUsableKey when OpenPGP is configured and every key has expired."""
    address = submission.reply_address
    notes = []
    if address and not acknowledge:
        notes.append(ACK_SKIPPED)
    if is_urgent(submission) and not page_on_call:
        notes.append(PAGE_SKIPPED)
    mails = [_association_mail(submission, submission_id, language, settings, notes)]
    if address and acknowledge:
        mails.append(_acknowledgement(submission, submission_id, language, settings))
    return mails


def is_urgent(submission: Submission) -> bool:
    """Whether the form's urgent rule holds: it has one and its checkbox was ticked."""
    urgency = submission.form.urgent
    return urgency is not None and bool(submission.values.get(urgency.field))


def _association_mail(
    submission: Submission, submission_id: str, language: str, settings: MailSettings, notes: list[str]
) -> OutgoingMail:
    """All fields laid out for a coordinator, in the staff language, resumé attached;
    OpenPGP-encrypted as a whole when keys are configured."""
    form = submission.form
    staff = i18n.catalogue(settings.staff_language)
    recipients = settings.recipients[form.name]
    urgent = is_urgent(submission)
    if urgent and PAGE_SKIPPED not in notes:
        recipients = tuple(dict.fromkeys(recipients + settings.urgent_recipients))
    subject_msgid, sealed_msgid = (
        (form.urgent.subject, form.urgent.sealed_subject) if urgent else (form.subject, form.sealed_subject)
    )
    subject = _subject(staff, subject_msgid, submission, submission_id)
    context = {
        "catalogue": staff,
        "form": form,
        "subject": subject,
        "reference": submission_id,
        "rows": _rows(form, submission, staff),
        "language": staff.gettext(LANGUAGE_NAMES.get(language, language)),
        "urgent": urgent,
        "notes": [staff.gettext(note) for note in notes],
    }
    body = _bodies("association", context)
    document = submission.document
    if document:
        body = mime.multipart("mixed", [body, mime.attachment(document.data, document.kind.mime, document.filename)])
    message_id = _message_id(submission_id, 1, settings)
    headers = _headers(settings, recipients, subject, message_id)
    if submission.reply_address:
        headers.append(("Reply-To", mime.header_value("Reply-To", submission.reply_address)))
    headers.append(("Content-Language", staff.language))
    if settings.keyring:
        sealed_subject = _subject(staff, sealed_msgid, submission, submission_id)
        data = encrypt_mime(headers, body, settings.keyring.usable(), sealed_subject)
    else:
        data = mime.message(headers, body)
    return OutgoingMail(message_id, settings.envelope_sender, recipients, data, ASSOCIATION)


def _acknowledgement(submission: Submission, submission_id: str, language: str, settings: MailSettings) -> OutgoingMail:
    """A fixed text in the submitter's language, with the request's reference: it repeats nothing they typed."""
    language = i18n.catalogue(language).language  # what the text is really in
    context = _acknowledgement_text(submission.form.acknowledgement, language)
    reference = context["catalogue"].gettext(ACKNOWLEDGEMENT_REFERENCE, reference=submission_id[:REFERENCE_CHARS])
    body = _bodies("acknowledgement", {**context, "reference": reference})
    recipients = (submission.reply_address,)
    message_id = _message_id(submission_id, 2, settings)
    headers = [*_headers(settings, recipients, context["subject"], message_id), ("Content-Language", language)]
    return OutgoingMail(message_id, settings.envelope_sender, recipients, mime.message(headers, body), ACKNOWLEDGEMENT)


@functools.cache
def _acknowledgement_text(acknowledgement: Acknowledgement, language: str) -> dict:
    """Subject and texts of an acknowledgement: the same for everyone writing one form in
    one language, so translated once per process (a supported language: the cache stays small)."""
    catalogue = i18n.catalogue(language)
    return {
        "catalogue": catalogue,
        "subject": catalogue.gettext(acknowledgement.subject),
        "paragraphs": [catalogue.gettext(msgid) for msgid in acknowledgement.paragraphs],
        "guidance": [catalogue.gettext(msgid) for msgid in acknowledgement.guidance],
        "end": [catalogue.gettext(msgid) for msgid in ACKNOWLEDGEMENT_END],
    }


def _subject(staff: i18n.Catalogue, msgid: str, submission: Submission, submission_id: str) -> str:
    """A subject of the form's definition, its placeholders filled: {reference}, or a field's value
    (the definition names only what may be shown: a support request's subject holds no personal data)."""
    values = {item.name: "" for item in submission.form.fields}  # an optional field left blank
    values.update((name, str(value)) for name, value in submission.values.items())
    return staff.gettext(msgid, **{**values, "reference": submission_id[:REFERENCE_CHARS]})


def _rows(form: Form, submission: Submission, staff: i18n.Catalogue) -> list[tuple[str, str]]:
    """(label, value) for every visible field, choices shown by their label, blanks marked."""
    rows = []
    for item in form.visible_fields:
        if item.kind == FILE:
            value = submission.document.filename if submission.document else ""
        else:
            value = submission.values.get(item.name, "")
        if isinstance(value, bool):
            value = staff.gettext(N_("Yes") if value else N_("No"))
        elif value and item.choices:
            value = staff.gettext(item.choice_label(value))
        rows.append((staff.gettext(item.staff_label or item.label), value or staff.gettext(N_("(not given)"))))
    return rows


def _headers(
    settings: MailSettings, recipients: tuple[str, ...], subject: str, message_id: str
) -> list[tuple[str, str]]:
    """Headers common to every email, each value encoded and on one logical line."""
    return [
        ("From", settings.from_header),
        ("To", mime.header_value("To", ", ".join(recipients))),
        ("Subject", mime.header_value("Subject", subject)),
        ("Date", email.utils.formatdate(localtime=False)),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no auto-replies to this
    ]


def _message_id(submission_id: str, number: int, settings: MailSettings) -> str:
    """The stable Message-ID: the same after a crash and a retry, so a duplicate is
    recognisable; kept outside the encryption too (openpgp.OUTER_HEADERS)."""
    return f"<{submission_id}.{number}@{settings.message_id_host}>"


def _bodies(template: str, context: dict) -> mime.Entity:
    """The text and HTML versions of an email, from its two templates, as alternatives."""
    return mime.multipart(
        "alternative",
        [
            mime.text(_templates.get_template(f"emails/{template}.txt").render(context), "plain"),
            mime.text(_templates.get_template(f"emails/{template}.html").render(context), "html"),
        ],
    )

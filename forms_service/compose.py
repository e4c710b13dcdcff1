"""Writing the emails a submission produces: one to the association, one acknowledgement.

Composition happens once, at acceptance, into OutgoingMail objects (exact
bytes), so whatever later holds or sends them never needs the form again.
It is on the accept path of every submission, so it is cheap: messages are
written by mime.py, and the acknowledgement, the same text for everyone
who writes in one language, is rendered once per form and language.
Header values are built from validated data and flattened to one line,
so nothing typed can ever add a header.
"""

from __future__ import annotations

import email.utils
import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

import jinja2

from . import i18n, mime
from .fields import FILE, N_, PEER_LANGUAGES, Form
from .openpgp import encrypt_mime
from .outgoing import OutgoingMail
from .validation import Submission

REFERENCE_CHARS = 8

SUBJECTS = {
    "volunteer": N_("Volunteer application from {name}"),
    "support": N_("Support request {reference}"),
    "urgent": N_("URGENT: support request {reference}"),
    "ack_volunteer": N_("We have received your application"),
    "ack_support": N_("We have received your request"),
}
# The visible subject of an OpenPGP-encrypted email: the real one travels inside.
SEALED_SUBJECTS = {
    "volunteer": N_("New volunteer application (encrypted)"),
    "support": N_("New support request (encrypted)"),
    "urgent": N_("URGENT: new support request (encrypted)"),
}

# The form's labels speak to the person filling it in ("Your motivation", "I agree
# that..."); a coordinator reads these shorter ones instead.
STAFF_LABELS = {
    "motivation": N_("Motivation"),
    "resume": N_("Resumé (attached)"),
    "urgent": N_("Marked as urgent"),
    "consent": N_("Consent to the privacy policy"),
}

ACKNOWLEDGEMENTS = {
    "volunteer": (
        N_("Thank you for your interest in becoming a volunteer peer supporter with CoCreate Humanity."),
        N_("We have received your application. A member of our team will read it and answer you by email."),
    ),
    "support": (
        N_("Thank you for reaching out to CoCreate Humanity."),
        N_("We have received your request. A peer supporter will contact you as soon as possible, "
           "in confidence."),
        N_("This is not an emergency service. If you are in danger or need immediate help, "
           "call your local emergency number."),
    ),
}
# Lines of the association's email when a daily quota left an email out.
ACK_SKIPPED = N_("No acknowledgement was sent to this address: it already received the most allowed in 24 hours "
                 "(a protection against using the form to flood someone's inbox).")
PAGE_SKIPPED = N_("The on-call address was not alerted: this connection already sent the most urgent requests "
                  "allowed in 24 hours. The request is still urgent.")

ACKNOWLEDGEMENT_END = (
    N_("For your privacy, this message does not repeat what you wrote."),
    N_("If you did not send this form, you can ignore this message."),
)

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("forms_service", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the code: no stat() of each file on every email
)
i18n.install(_templates)


@dataclass(frozen=True)
class MailSettings:
    """What composition needs from the configuration.

    `certificates`: the vetted FORMS_PGP_KEYS; when there are any, the
    association's email is encrypted to them before it reaches the spool.
    """

    sender: str
    recipients: dict[str, tuple[str, ...]]
    urgent_recipients: tuple[str, ...]
    message_id_host: str
    staff_language: str
    certificates: tuple = ()
    bounce_address: str | None = None

    @classmethod
    def from_config(cls, config, certificates=None) -> MailSettings:
        return cls(
            sender=config["MAIL_DEFAULT_SENDER"],
            recipients={
                "volunteer": tuple(config["VOLUNTEER_RECIPIENTS"]),
                "support": tuple(config["SUPPORT_RECIPIENTS"]),
            },
            urgent_recipients=tuple(config["URGENT_RECIPIENTS"]),
            message_id_host=urlsplit(config["SITE_URL"]).hostname,
            staff_language=config["STAFF_LANGUAGE"],
            certificates=tuple(certificates or ()),
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


def compose(submission: Submission, submission_id: str, language: str, settings: MailSettings, *,
            acknowledge: bool = True, page_on_call: bool = True) -> list[OutgoingMail]:
    """The association's email first, then the submitter's acknowledgement.

    Past their daily quotas (ratelimit.py) the acknowledgement is left out, or
    an urgent request goes to the support recipients only, and the
    association's email says so: it is the one email never left out.
    """
    notes = []
    if not acknowledge:
        notes.append(ACK_SKIPPED)
    if is_urgent(submission) and not page_on_call:
        notes.append(PAGE_SKIPPED)
    mails = [_association_mail(submission, submission_id, language, settings, notes)]
    if acknowledge:
        mails.append(_acknowledgement(submission, submission_id, language, settings))
    return mails


def is_urgent(submission: Submission) -> bool:
    return submission.form.name == "support" and bool(submission.values.get("urgent"))


def _association_mail(submission: Submission, submission_id: str, language: str,
                      settings: MailSettings, notes: list[str]) -> OutgoingMail:
    """All fields laid out for a coordinator, in the staff language, resumé attached;
    OpenPGP-encrypted as a whole when keys are configured."""
    form = submission.form
    staff = i18n.catalogue(settings.staff_language)
    recipients = settings.recipients[form.name]
    if is_urgent(submission) and PAGE_SKIPPED not in notes:
        recipients = tuple(dict.fromkeys(recipients + settings.urgent_recipients))
    kind = _kind(submission)
    subject = _subject(staff, submission, submission_id, kind)
    context = {
        "catalogue": staff,
        "form": form,
        "subject": subject,
        "reference": submission_id,
        "rows": _rows(form, submission, staff),
        "language": staff.gettext(_language_name(language)),
        "urgent": is_urgent(submission),
        "notes": [staff.gettext(note) for note in notes],
    }
    body = _bodies("association", context)
    document = submission.document
    if document:
        body = mime.multipart("mixed", [body, mime.attachment(document.data, document.kind.mime, document.filename)])
    message_id = _message_id(submission_id, 1, settings)
    headers = [*_headers(settings, recipients, subject, message_id),
               ("Reply-To", mime.header_value("Reply-To", submission.values["email"])),
               ("Content-Language", staff.language)]
    if settings.certificates:
        data = encrypt_mime(headers, body, settings.certificates, staff.gettext(SEALED_SUBJECTS[kind]))
    else:
        data = mime.message(headers, body)
    return OutgoingMail(message_id, settings.envelope_sender, recipients, data)


def _acknowledgement(submission: Submission, submission_id: str, language: str,
                     settings: MailSettings) -> OutgoingMail:
    """A fixed text in the submitter's language: it repeats nothing they typed."""
    language = i18n.catalogue(language).language  # what the text is really in
    subject, body = _acknowledgement_text(submission.form.name, language)
    recipients = (submission.values["email"],)
    message_id = _message_id(submission_id, 2, settings)
    headers = [*_headers(settings, recipients, subject, message_id), ("Content-Language", language)]
    return OutgoingMail(message_id, settings.envelope_sender, recipients, mime.message(headers, body))


@functools.cache
def _acknowledgement_text(form_name: str, language: str) -> tuple[str, mime.Entity]:
    """Subject and bodies of an acknowledgement: the same for everyone writing one form in
    one language, so rendered once per process (a supported language: the cache stays small)."""
    catalogue = i18n.catalogue(language)
    subject = catalogue.gettext(SUBJECTS[f"ack_{form_name}"])
    paragraphs = ACKNOWLEDGEMENTS[form_name] + ACKNOWLEDGEMENT_END
    context = {"catalogue": catalogue, "subject": subject,
               "paragraphs": [catalogue.gettext(msgid) for msgid in paragraphs]}
    return subject, _bodies("acknowledgement", context)


def _kind(submission: Submission) -> str:
    """Which subject an association email gets: volunteer, support or urgent."""
    if submission.form.name == "volunteer":
        return "volunteer"
    return "urgent" if is_urgent(submission) else "support"


def _subject(staff: i18n.Catalogue, submission: Submission, submission_id: str, kind: str) -> str:
    """Volunteer: the applicant's name helps sorting. Support: no personal data at all."""
    if kind == "volunteer":
        return staff.gettext(SUBJECTS["volunteer"], name=submission.values["name"])
    return staff.gettext(SUBJECTS[kind], reference=submission_id[:REFERENCE_CHARS])


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
        label = STAFF_LABELS.get(item.name, item.label)
        rows.append((staff.gettext(label), value or staff.gettext(N_("(not given)"))))
    return rows


def _language_name(code: str) -> str:
    """The msgid naming a site language, for "submitted in ..." lines."""
    names = {choice.value: choice.label for choice in PEER_LANGUAGES}
    return names.get(code, code)


def _headers(settings: MailSettings, recipients: tuple[str, ...], subject: str,
             message_id: str) -> list[tuple[str, str]]:
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
    return mime.multipart("alternative", [
        mime.text(_templates.get_template(f"emails/{template}.txt").render(context), "plain"),
        mime.text(_templates.get_template(f"emails/{template}.html").render(context), "html"),
    ])



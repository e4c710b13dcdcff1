"""What both the HTML and the browser tests need: where each form lives and what to type in it."""

from __future__ import annotations

import itertools

from email.message import EmailMessage

from forms_service import i18n
from forms_service.fields import EMAIL, FORMS, TEL, Field
from tests import samples
from tests.service.helpers import deliver

LANGUAGES = i18n.supported_languages()
RESUME = samples.pdf_bytes("Curriculum vitae - Amina Haddad")
CASES = list(itertools.product(FORMS, LANGUAGES))
"""Every (form name, language) pair the site must offer."""

def site_path(lang: str, page: str) -> str:
    """Site-relative path of a page (Form.page style, '/x.html') in a language."""
    return (i18n.language_prefix(lang) + page).lstrip("/")


def typed_value(field: Field) -> str:
    """A valid value a person might type into a text-like field, unicode included."""
    if field.kind == EMAIL:
        return "amina.haddad@example.org"
    if field.kind == TEL:
        return "+41 22 555 01 01"
    return f"Amina « {field.name} » حداد ✓"


def association_mails(app, smtp_server, form_name: str) -> list[EmailMessage]:
    """What the association's inbox for a form received, once the app's spool delivered."""
    deliver(app)
    inbox = set(app.config[f"{form_name.upper()}_RECIPIENTS"])
    return [message.parsed() for message in smtp_server.messages if inbox & set(message.rcpt_tos)]

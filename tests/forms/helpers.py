"""What both the HTML and the browser tests need: where each form lives and what to type in it."""

from __future__ import annotations

import io
import itertools
from email.message import EmailMessage

from forms_service import i18n
from forms_service.fields import FORMS
from forms_service.form_model import CHECKBOX, EMAIL, FILE, HIDDEN, TEL, Field
from harness import samples
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


def what_a_browser_sends(html) -> dict:
    """The body a browser builds from a built <form> once a person filled it in validly.

    Read from the HTML alone, as a browser does, so it also serves a form this
    process has no definition of (tests/deploy/test_new_form.py).
    """
    data = {}
    for control in html.select("[name]"):
        name = control["name"]
        kind = control.get("type") if control.name == "input" else control.name
        if control.name == "select":
            data[name] = next(option["value"] for option in control.select("option") if option["value"])
        elif kind == CHECKBOX:
            data[name] = control.get("value", "on")
        elif kind == FILE:
            data[name] = (io.BytesIO(RESUME), "CV Amina.pdf", "application/pdf")
        elif kind == HIDDEN or control.find_parent(class_="cch-form__trap"):
            data[name] = control.get("value", "")  # the honeypot stays empty, as people leave it
        else:
            data[name] = typed_value(Field(name, kind))[: int(control["maxlength"])]
    return data


def association_mails(app, smtp_server, form_name: str) -> list[EmailMessage]:
    """What the association's inbox for a form received, once the app's spool delivered."""
    deliver(app)
    inbox = set(app.config[FORMS[form_name].recipients_setting])
    return [message.parsed() for message in smtp_server.messages if inbox & set(message.rcpt_tos)]

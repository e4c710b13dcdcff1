"""A form is what its definition says (fields.Form): the emails it makes, the setting naming its
recipients, and definitions that could not work stop the import instead of a submission."""

from __future__ import annotations

import dataclasses
from email import message_from_bytes, policy

import pytest
from werkzeug.datastructures import MultiDict

from forms_service.app import create_app
from forms_service.compose import ACK_SKIPPED, MailSettings, compose
from forms_service.config import ConfigError
from forms_service.fields import FORMS, HONEYPOT_FIELD, LANG, SUPPORT
from forms_service.form_model import (
    CHECKBOX,
    EMAIL,
    N_,
    TEXTAREA,
    Acknowledgement,
    DefinitionError,
    Field,
    Form,
    Urgency,
)
from forms_service.validation import validate

MESSAGE = Field(
    "message",
    TEXTAREA,
    N_("Your message"),
    required=True,
    max_length=500,
    purpose=N_("To tell us, if you wish, what you are going through."),
)
ADDRESS = Field("email", EMAIL, N_("Email address"), max_length=254, purpose=N_("To reply to you."))
# A suggestion box: anonymous, so nobody to acknowledge or reply to.
SUGGESTIONS = Form(
    name="suggestions",
    title=N_("Your message"),
    page="/suggestions.html",
    thanks_page="/suggestions-thanks.html",
    subject=N_("Support request {reference}"),
    sealed_subject=N_("New support request (encrypted)"),
    fields=(MESSAGE, LANG, HONEYPOT_FIELD),
)
SETTINGS = MailSettings(
    sender="Forms <forms@example.org>",
    recipients={"suggestions": ("box@example.org",)},
    urgent_recipients=(),
    message_id_host="site.test",
    staff_language="en",
)


def composed(form: Form, values: dict, **quotas) -> list:
    submission = validate(form, MultiDict(values), MultiDict())
    assert submission.ok, submission.errors
    return compose(submission, "abcdefgh12345678", "en", SETTINGS, **quotas)


@pytest.mark.parametrize("acknowledge", [True, False], ids=["within-quota", "past-quota"])
def test_a_form_without_a_reply_address_sends_no_acknowledgement(acknowledge):
    [mail] = composed(SUGGESTIONS, {"message": "The waiting room is cold."}, acknowledge=acknowledge)
    assert mail.recipients == ("box@example.org",)
    message = message_from_bytes(bytes(mail.data), policy=policy.default)
    assert message["Reply-To"] is None
    assert message["Subject"] == "Support request abcdefgh"
    assert ACK_SKIPPED not in message.get_body(("plain",)).get_content()  # nothing was left out


def test_an_optional_reply_address_acknowledges_only_when_given():
    form = dataclasses.replace(
        SUGGESTIONS,
        fields=(MESSAGE, ADDRESS, LANG, HONEYPOT_FIELD),
        reply_to="email",
        acknowledgement=SUPPORT.acknowledgement,
    )
    assert len(composed(form, {"message": "Hello"})) == 1
    association, acknowledgement = composed(form, {"message": "Hello", "email": "sam@example.org"})
    assert message_from_bytes(bytes(association.data), policy=policy.default)["Reply-To"] == "sam@example.org"
    assert acknowledgement.recipients == ("sam@example.org",)


BROKEN = {
    "reply-to-not-an-email-field": dict(reply_to="message", acknowledgement=SUPPORT.acknowledgement),
    "acknowledgement-without-address": dict(acknowledgement=Acknowledgement(N_("Thanks"), ())),
    "urgent-not-a-checkbox": dict(urgent=Urgency("message", N_("URGENT"), N_("URGENT"))),
    "subject-names-no-field": dict(subject=N_("Volunteer application from {name}")),
    "field-without-purpose": dict(fields=(dataclasses.replace(MESSAGE, purpose=None), LANG)),
    "name-not-a-segment": dict(name="suggestion box"),
    "two-fields-one-name": dict(fields=(MESSAGE, MESSAGE)),
    "condition-on-no-field": dict(fields=(dataclasses.replace(ADDRESS, required_when=("contact", ("phone",))),)),
    "condition-on-a-later-select": dict(
        fields=(dataclasses.replace(ADDRESS, shown_when=("contact", ("phone",))), SUPPORT["contact"])
    ),
    "condition-on-a-value-not-offered": dict(
        fields=(SUPPORT["contact"], dataclasses.replace(ADDRESS, required_when=("contact", ("fax",))))
    ),
    "condition-on-a-text-field": dict(fields=(MESSAGE, dataclasses.replace(ADDRESS, shown_when=("message", ("x",))))),
    "required-and-conditional": dict(
        fields=(SUPPORT["contact"], dataclasses.replace(ADDRESS, required=True, required_when=("contact", ("phone",))))
    ),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_a_definition_that_cannot_work_is_refused_when_it_is_made(change):
    with pytest.raises(DefinitionError, match="form '"):
        dataclasses.replace(SUGGESTIONS, **change)


def test_the_urgent_rule_is_a_checkbox_of_the_form():
    urgent = Field("urgent", CHECKBOX, N_("Marked as urgent"), purpose=N_("To reply to you."))
    form = dataclasses.replace(SUGGESTIONS, fields=(MESSAGE, urgent, LANG), urgent=SUPPORT.urgent)
    [mail] = composed(form, {"message": "Now", "urgent": "yes"})
    assert message_from_bytes(bytes(mail.data), policy=policy.default)["Subject"] == "URGENT: support request abcdefgh"


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_every_form_needs_its_recipients_setting(app_config, form):
    """Derived from the definitions: a new form's FORMS_<NAME>_RECIPIENTS is checked without a config.py edit."""
    settings = {key: value for key, value in app_config.items() if key != form.recipients_setting}
    with pytest.raises(ConfigError) as stopped:
        create_app(settings)
    assert stopped.value.setting == f"FORMS_{form.name.upper()}_RECIPIENTS"

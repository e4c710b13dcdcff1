"""The acknowledgement a person gets back, as a real SMTP server receives it: the request's reference
(the one in the association's subject), and for a request for help the crisis box's guidance, in the
submitter's language, still repeating nothing they typed."""

from __future__ import annotations

import pytest

from forms_service import i18n
from forms_service.compose import REFERENCE_CHARS
from forms_service.fields import FORMS
from harness.settings import JSON, support_form, volunteer_form
from tests.forms.helpers import LANGUAGES
from tests.service.helpers import post

TYPED = {"name": "Zoé Quintessence", "message": "Insomnies singulières", "motivation": "Motivation singulière"}


def received(smtp_server, form: dict, app) -> tuple:
    """The association's email and the acknowledgement, parsed."""
    association_inbox = set(app.config[FORMS["support"].recipients_setting]) | set(
        app.config[FORMS["volunteer"].recipients_setting]
    )
    association = next(m.parsed() for m in smtp_server.messages if association_inbox & set(m.rcpt_tos))
    acknowledgement = next(m.parsed() for m in smtp_server.messages if m.rcpt_tos == (form["email"],))
    return association, acknowledgement


def bodies(message) -> tuple[str, str]:
    return tuple(message.get_body((kind,)).get_content() for kind in ("plain", "html"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_request_for_help_is_acknowledged_with_its_reference_and_what_to_do_in_an_emergency(
    client, smtp_server, lang
):
    form = support_form(lang=lang, name=TYPED["name"], message=TYPED["message"], urgent="on")
    response = post(client, "support", form, JSON)
    assert response.status_code == 202
    reference = response.get_json()["id"][:REFERENCE_CHARS]
    association, acknowledgement = received(smtp_server, form, client.application)
    assert association["Subject"].endswith(reference)
    text, html = bodies(acknowledgement)
    catalogue = i18n.catalogue(lang)
    for body in (text, html):
        assert reference in body
        assert all(needle in body for needle in ("143", "144", "112", "findahelpline.com")), body
        assert not [typed for typed in TYPED.values() for word in typed.split() if word in body]
    # The crisis box's own words, in the submitter's language, the organisation's staff care included.
    assert [catalogue.gettext(line) in text for line in FORMS["support"].acknowledgement.guidance] == [True] * 5
    assert 'href="tel:143"' in html and 'href="tel:112"' in html  # a tap dials them on a phone


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_application_is_acknowledged_with_its_reference(client, smtp_server, lang):
    form = volunteer_form(lang=lang, name=TYPED["name"], motivation=TYPED["motivation"])
    response = post(client, "volunteer", form, JSON)
    assert response.status_code == 202
    reference = response.get_json()["id"][:REFERENCE_CHARS]
    _association, acknowledgement = received(smtp_server, form, client.application)
    text, html = bodies(acknowledgement)
    assert reference in text and reference in html
    assert "findahelpline.com" not in text  # a volunteer's application is not a request for help
    assert not [typed for typed in TYPED.values() for word in typed.split() if word in text + html]

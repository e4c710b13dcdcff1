"""Every text a person sees exists, translated, in every catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import forms_service
from forms_service import i18n
from forms_service.fields import FORMS

PACKAGE = Path(forms_service.__file__).parent
OVERRIDES = PACKAGE.parent / "overrides"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
OVERRIDE_METHODS = [("**.html", "jinja2")]  # the site's own templates (404 page, forms)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_msgids() -> set[str]:
    """Strings marked with N_() in code or _() in the service's and the site's templates, as a
    translator's tool extracts them."""
    keywords = {"_": None, "N_": None}
    found = [
        *extract_from_dir(str(PACKAGE), method_map=METHODS, keywords=keywords),
        *extract_from_dir(str(OVERRIDES), method_map=OVERRIDE_METHODS, keywords=keywords),
    ]
    return {message for _file, _line, message, _comments, _context in found}


def test_the_site_templates_strings_are_extracted(msgids):
    assert {"Page not found", "Back to the home page", "Sending…"} <= msgids


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    ids = used_msgids()
    assert len(ids) > 80  # extraction really found the texts
    return ids


@pytest.mark.parametrize("language", i18n.supported_languages())
def test_every_msgid_is_translated_in_every_catalogue(msgids, language):
    with (PACKAGE / "translations" / f"{language}.po").open("rb") as handle:
        catalog = read_po(handle)
    missing = sorted(msgid for msgid in msgids if not (catalog.get(msgid) and catalog.get(msgid).string))
    assert missing == []
    fuzzy = sorted(message.id for message in catalog if message.id and message.fuzzy)
    assert fuzzy == []


@pytest.mark.parametrize("language", i18n.supported_languages())
def test_placeholders_survive_translation(msgids, language):
    catalogue = i18n.catalogue(language)
    for msgid in msgids:
        assert set(PLACEHOLDER.findall(catalogue.gettext(msgid))) == set(PLACEHOLDER.findall(msgid)), msgid


def test_french_is_default_and_english_exists():
    assert i18n.DEFAULT_LANGUAGE == "fr"
    assert {"fr", "en"} <= set(i18n.supported_languages())


@pytest.mark.parametrize("language", i18n.supported_languages())
def test_every_text_of_every_form_definition_is_translated(language):
    """Read from the definitions themselves (fields.FORMS), so a form added anywhere is checked."""
    catalogue = i18n.catalogue(language)
    for form in FORMS.values():
        assert sorted(form.msgids - set(catalogue.messages)) == [], form.name

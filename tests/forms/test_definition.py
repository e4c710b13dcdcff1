"""One definition: the forms in the built pages are exactly what the service accepts.

The built HTML is compared with forms_service/fields.py field by field, and
what that HTML would make a browser send is posted to the real app.
"""

from __future__ import annotations

import re
from posixpath import dirname, join, normpath

import pytest
from babel.messages.extract import extract_from_dir
from bs4 import BeautifulSoup

from forms_service import i18n
from forms_service.fields import FORMS
from forms_service.form_model import CHECKBOX, EMAIL, FILE, HIDDEN, HONEYPOT, SELECT, TEL, TEXT, TEXTAREA
from tests.forms.helpers import CASES, LANGUAGES, RESUME, association_mails, site_path, what_a_browser_sends
from tests.site.conftest import ROOT

ENDPOINT = re.search(r"^\s*forms_endpoint:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), re.M).group(1)
TAGS = {TEXTAREA: "textarea", SELECT: "select"}
INPUT_TYPES = {
    TEXT: "text",
    EMAIL: "email",
    TEL: "tel",
    FILE: "file",
    CHECKBOX: "checkbox",
    HIDDEN: "hidden",
    HONEYPOT: "text",
}


def built_form(origin, name: str, lang: str):
    """The <form> element of a built page, parsed."""
    page = origin.dir / site_path(lang, FORMS[name].page)
    return BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser").select_one(f"form#{name}-form")


def linked_path(lang: str, name: str, href: str) -> str:
    """Site-relative path a link of the form page points to (fragment dropped)."""
    here = dirname(site_path(lang, FORMS[name].page))
    return normpath(join(here, href.split("#")[0]))


@pytest.mark.parametrize("name, lang", CASES)
def test_built_form_matches_the_definition_field_by_field(origin, name, lang):
    form, html = FORMS[name], built_form(origin, name, lang)
    assert (html["action"], html["method"], html["enctype"]) == (
        f"{ENDPOINT}/{name}?lang={lang}",
        "post",
        "multipart/form-data",
    )
    controls = html.select("[name]")
    assert [control["name"] for control in controls] == [field.name for field in form.fields]
    for field, control in zip(form.fields, controls, strict=True):
        assert control.name == TAGS.get(field.kind, "input"), field.name
        assert control.get("type") == INPUT_TYPES.get(field.kind), field.name
        assert control.has_attr("required") == field.required, field.name
        assert control.get("autocomplete") == field.autocomplete, field.name
        if field.kind == HIDDEN:
            assert control["value"] == lang
        else:
            assert control.get("maxlength") == (str(field.max_length) if field.max_length else None), field.name
    resume = html.select_one("[type=file]")
    if resume:
        field = form[resume["name"]]
        expected = {token for kind in field.accept for token in (f".{kind.extension}", kind.mime)}
        assert set(resume["accept"].split(",")) == expected
        assert int(resume["data-max-bytes"]) == field.max_bytes
    for select in html.select("select"):
        values = [option["value"] for option in select.select("option")]
        assert values == ["", *(choice.value for choice in form[select["name"]].choices)]


@pytest.mark.parametrize("name, lang", CASES)
def test_honeypot_is_hidden_from_people_and_assistive_technology(origin, name, lang):
    html = built_form(origin, name, lang)
    trap = html.select_one("[name=website]")
    assert (trap["tabindex"], trap["autocomplete"]) == ("-1", "off")
    assert trap.find_parent(class_="cch-form__trap")["aria-hidden"] == "true"
    label = html.select_one(f"label[for={trap['id']}]").get_text(strip=True)
    assert label == i18n.catalogue(lang).gettext(FORMS[name]["website"].label)


@pytest.mark.parametrize("name, lang", CASES)
def test_every_field_is_labelled_described_and_says_required_in_words(origin, name, lang):
    catalogue, html = i18n.catalogue(lang), built_form(origin, name, lang)
    for field in FORMS[name].visible_fields:
        control = html.select_one(f"[name={field.name}]")
        label = html.select_one(f"label[for={control['id']}]")
        assert label.select_one(".cch-form__label").get_text(strip=True) == catalogue.gettext(field.label)
        assert (catalogue.gettext("(required)") in label.get_text()) == field.required, field.name
        for described_by in control.get("aria-describedby", "").split():
            assert html.find(id=described_by), described_by
        if field.hint:
            assert catalogue.gettext(field.hint) in html.find(id=f"{control['id']}-hint").get_text()
        if field.required:
            assert control["data-error-required"] == catalogue.gettext(field.error("required"))


@pytest.mark.parametrize("name, lang", CASES)
def test_links_lead_to_the_privacy_section_and_thanks_page_of_the_same_language(origin, name, lang):
    html = built_form(origin, name, lang)
    privacy = html.select_one("[name=consent]").find_parent().select_one("a")
    assert privacy["href"].endswith(f"#{name}-form")
    page = linked_path(lang, name, privacy["href"])
    assert page == site_path(lang, "/privacy.html")
    assert BeautifulSoup((origin.dir / page).read_text(encoding="utf-8"), "html.parser").find(id=f"{name}-form")
    assert linked_path(lang, name, html["data-thanks"]) == site_path(lang, FORMS[name].thanks_page)


def collected_table(origin, name: str, lang: str):
    """The privacy page's table of what a form collects, and the section it sits in."""
    page = BeautifulSoup((origin.dir / site_path(lang, "/privacy.html")).read_text(encoding="utf-8"), "html.parser")
    table = page.find(id=f"{name}-form-collected")
    assert table, f"no table of what {name} collects on {lang} privacy.html"
    return table, table.find_previous("h2")


@pytest.mark.parametrize("name, lang", CASES)
def test_the_privacy_page_lists_every_field_with_its_purpose_and_choices(origin, name, lang):
    """Generated from the definition: a field cannot be collected without being listed."""
    catalogue, form = i18n.catalogue(lang), FORMS[name]
    table, section = collected_table(origin, name, lang)
    assert section["id"] == f"{name}-form"  # where the form's consent links to
    rows = [row.find_all("td", recursive=False) for row in table.select("tbody > tr")]
    assert len(rows) == len(form.visible_fields)
    for field, (information, purpose, required) in zip(form.visible_fields, rows, strict=True):
        choices = [item.get_text(strip=True) for item in information.select("li")]
        for item in information.select("ul"):
            item.extract()
        assert information.get_text(strip=True) == catalogue.gettext(field.label), field.name
        assert choices == [catalogue.gettext(choice.label) for choice in field.choices], field.name
        assert purpose.get_text(strip=True) == catalogue.gettext(field.purpose), field.name
        assert required.get_text(strip=True) == required_in_words(catalogue, form, field), field.name


def required_in_words(catalogue, form, field) -> str:
    """What the privacy table says of a field: required, optional, or required for some answers."""
    if field.required_when:
        name, values = field.required_when
        choices = ", ".join(catalogue.gettext(choice.label) for choice in form[name].choices if choice.value in values)
        return catalogue.gettext("Required if you choose: {choices}", choices=choices)
    return catalogue.gettext("Required" if field.required else "Optional")


@pytest.mark.parametrize("name, lang", CASES)
def test_conditions_between_fields_are_rendered_from_the_definition(origin, name, lang):
    """The script reads them from the page (forms.js), not from a copy of its own."""
    catalogue, html = i18n.catalogue(lang), built_form(origin, name, lang)
    for field in FORMS[name].visible_fields:
        control = html.select_one(f"[name={field.name}]")
        wrapper = control.find_parent(class_="cch-form__field")
        if field.required_when:
            assert (control["data-required-when"], control["data-required-values"].split()) == (
                field.required_when[0],
                list(field.required_when[1]),
            )
            assert control["data-error-required"] == catalogue.gettext(field.error("required"))
        else:
            assert not control.has_attr("data-required-when"), field.name
        if field.shown_when:
            assert (wrapper["data-shown-when"], wrapper["data-shown-values"].split()) == (
                field.shown_when[0],
                list(field.shown_when[1]),
            )
        else:
            assert not wrapper.has_attr("data-shown-when"), field.name


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_support_form_asks_for_a_phone_for_a_call_and_which_other_language(origin, lang):
    html = built_form(origin, "support", lang)
    assert html.select_one("[name=phone]")["data-required-values"].split() == ["phone", "video"]
    which = html.select_one("[name=other_language]").find_parent(class_="cch-form__field")
    assert which["data-shown-values"] == "other"
    # The browser must not offer the legal name it knows for a pseudonym.
    assert html.select_one("[name=name]")["autocomplete"] == "nickname"
    hint = html.find(id="support-email-hint").get_text()
    assert hint == i18n.catalogue(lang).gettext(FORMS["support"]["email"].hint)
    assert ("personal address" if lang == "en" else "adresse personnelle") in hint


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_support_forms_phone_number_and_other_choices_are_listed(origin, lang):
    """What the hand-written table had left out: the phone number, and the situation "Other"."""
    catalogue = i18n.catalogue(lang)
    text = collected_table(origin, "support", lang)[0].get_text(" ", strip=True)
    assert catalogue.gettext("Phone number") in text
    assert catalogue.gettext("To call you, if you prefer a phone or video call.") in text
    assert text.count(catalogue.gettext("Other")) == 2  # situation and preferred language


@pytest.mark.parametrize("name, lang", CASES)
def test_what_the_built_form_sends_is_accepted_and_relayed(origin, forms_app, smtp_server, name, lang):
    html = built_form(origin, name, lang)
    response = forms_app.test_client().post(
        html["action"], data=what_a_browser_sends(html), headers={"Origin": origin.name}
    )
    assert response.status_code == 303
    assert response.location == origin.url + linked_path(lang, name, html["data-thanks"])
    [mail] = association_mails(forms_app, smtp_server, name)
    attachments = [part.get_content() for part in mail.iter_attachments()]
    assert attachments == ([RESUME] if html.select_one("[type=file]") else [])


@pytest.mark.parametrize("name, lang", CASES)
def test_the_services_errors_are_the_pages_own_messages_for_its_required_fields(origin, forms_app, name, lang):
    html = built_form(origin, name, lang)
    response = forms_app.test_client().post(
        html["action"], data={"lang": lang}, headers={"Origin": origin.name, "Accept": "application/json"}
    )
    assert response.status_code == 400
    required = {control["name"]: control["data-error-required"] for control in html.select("[required]")}
    assert response.get_json()["errors"] == required


def test_a_refusal_is_the_forms_own_built_page_filled_in_again(origin, forms_app, lang="en"):
    """Without the script: the site's page (its stylesheets, header, texts), served from /forms/<name>,
    so its relative addresses are made absolute; no script; the form given back."""
    html = built_form(origin, "support", lang)
    data = {**what_a_browser_sends(html), "contact": "video", "phone": "", "message": "Sleepless <since> June"}
    response = forms_app.test_client().post(html["action"], data=data, headers={"Origin": origin.name})
    assert response.status_code == 400
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    built = BeautifulSoup((origin.dir / site_path(lang, "/support.html")).read_text(encoding="utf-8"), "html.parser")
    assert page.html["lang"] == lang
    assert page.title.get_text().endswith(built.title.get_text())
    stylesheets = [link["href"] for link in page.select("link[rel=stylesheet]")]
    assert stylesheets == [
        origin.url + "assets/" + link["href"].split("assets/", 1)[1] for link in built.select("link[rel=stylesheet]")
    ]
    assert page.select("script") == []
    assert page.select_one(".md-header") and page.select_one(".md-footer")
    form = page.select_one("form#support-form")
    assert form["action"] == html["action"]
    # A browser drops the line break right after <textarea>; html.parser keeps it.
    assert form.select_one("[name=message]").get_text() == "\nSleepless <since> June"
    assert form.select_one("[name=email]")["value"] == data["email"]
    assert form.select_one("[name=contact] [selected]")["value"] == "video"
    assert form.select_one("[name=phone]")["aria-invalid"] == "true"
    message = i18n.catalogue(lang).gettext(FORMS["support"]["phone"].error("required"))
    assert page.find(id="support-phone-error").get_text() == message
    assert "info@cocreatehumanity.org" in page.get_text()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_of_the_form_template_is_translated(lang):
    found = extract_from_dir(str(ROOT / "overrides"), method_map=[("partials/**.html", "jinja2")], keywords={"_": None})
    msgids = {message for _file, _line, message, _comments, _context in found}
    assert len(msgids) >= 5  # extraction really read the template (its other texts come from messages.py)
    assert sorted(msgids - set(i18n.catalogue(lang).messages)) == []


HEAVY = ("flask", "cryptography", "pysequoia", "flask_mail", "flask_limiter")
SITE_VIEW = "import forms_service.fields, forms_service.i18n, forms_service.messages, forms_service.form_page"


def test_the_definitions_and_the_sites_view_of_them_import_without_the_service():
    """What the MkDocs hooks read loads neither Flask nor the crypto libraries (the app factory is
    forms_service.app), and the hooks import the project as an installed package."""
    import subprocess
    import sys

    probe = f"{SITE_VIEW}; import sys; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in loaded if name.startswith(HEAVY)] == []
    for hook in (ROOT / "overrides" / "hooks").glob("*.py"):
        assert "sys.path" not in hook.read_text(), hook.name

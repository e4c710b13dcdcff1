"""Every refusal reason, in French and English, as JSON and as an HTML page; odd input never a 500."""

from __future__ import annotations

import html
import io
import unicodedata

import pytest
from werkzeug.datastructures import MultiDict

from forms_service import i18n
from forms_service.fields import FORMS, RESUME_MAX_BYTES
from harness import samples
from harness.settings import JSON, support_form, volunteer_form
from tests.service.helpers import post


def upload(data: bytes, name: str = "cv.pdf"):
    return (io.BytesIO(data), name, "application/pdf")


# (error code, form, field, overrides, placeholder values)
CASES = [
    ("required", "volunteer", "name", {"name": None}, {}),
    ("required", "volunteer", "resume", {"resume": None}, {}),
    ("required", "support", "email", {"email": "   "}, {}),
    ("too_long", "volunteer", "motivation", {"motivation": "é" * 5001}, {"max_length": 5000}),
    ("too_long", "support", "message", {"message": "ش" * 5001}, {"max_length": 5000}),
    ("single_line", "volunteer", "name", {"name": "Amina\r\nBcc: victim@example.org"}, {}),
    ("control_chars", "volunteer", "motivation", {"motivation": "hello\x00world\x07"}, {}),
    ("bidi_controls", "volunteer", "name", {"name": "\u202eevil\u202c name"}, {}),
    ("bidi_controls", "support", "phone", {"phone": "+41 \u202e00 00 000 22"}, {}),
    ("email", "volunteer", "email", {"email": "not-an-address"}, {}),
    ("email", "support", "email", {"email": "a@b@example.org"}, {}),
    ("email", "support", "email", {"email": "=?utf-8?q?boss=40evil.example?=@example.org"}, {}),
    ("choice", "support", "situation", {"situation": "spaceship"}, {}),
    ("file_type", "volunteer", "resume", {"resume": upload(samples.exe_bytes(), "cv.pdf")}, {}),
    ("file_type", "volunteer", "resume", {"resume": upload(b"just some text", "cv.docx")}, {}),
    (
        "file_too_big",
        "volunteer",
        "resume",
        {"resume": upload(samples.padded_pdf(RESUME_MAX_BYTES + 1))},
        {"max_megabytes": 5},
    ),
    ("file_empty", "volunteer", "resume", {"resume": upload(b"", "cv.pdf")}, {}),
    ("file_macros", "volunteer", "resume", {"resume": upload(samples.docm_bytes(), "cv.docx")}, {}),
    ("file_active", "volunteer", "resume", {"resume": upload(samples.docx_remote_template(), "cv.docx")}, {}),
    ("file_active", "volunteer", "resume", {"resume": upload(samples.docx_linked_image(), "cv.docx")}, {}),
    (
        "file_active",
        "volunteer",
        "resume",
        {"resume": upload(samples.docx_template_disguised_as_hyperlink(), "cv.docx")},
        {},
    ),
    ("file_active", "volunteer", "resume", {"resume": upload(samples.odt_web_image(), "cv.odt")}, {}),
    (
        "file_active",
        "volunteer",
        "resume",
        {"resume": upload(samples.odt_with_picture("file:///etc/passwd"), "cv.odt")},
        {},
    ),
    ("file_active", "volunteer", "resume", {"resume": upload(samples.odt_onload_macro(), "cv.odt")}, {}),
    ("file_active", "volunteer", "resume", {"resume": upload(samples.pdf_javascript_on_open())}, {}),
    ("file_encrypted", "volunteer", "resume", {"resume": upload(samples.encrypted_docx(), "cv.docx")}, {}),
    ("file_damaged", "volunteer", "resume", {"resume": upload(samples.zip_bomb_docx(), "cv.docx")}, {}),
    ("required", "volunteer", "consent", {"consent": None}, {}),
    ("required", "support", "consent", {"consent": ""}, {}),
    ("required", "support", "phone", {"contact": "phone", "phone": None}, {}),
    ("required", "support", "phone", {"contact": "video", "phone": "  "}, {}),
]


def expected(form_name: str, field: str, code: str, language: str, values: dict) -> str:
    return i18n.catalogue(language).gettext(FORMS[form_name][field].error(code), **values)


def make(form_name: str, overrides: dict, language: str) -> dict:
    base = volunteer_form if form_name == "volunteer" else support_form
    fresh = {
        key: (upload(value[0].getvalue(), value[1]) if isinstance(value, tuple) else value)
        for key, value in overrides.items()
    }
    return base(lang=language, **fresh)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize(
    ("code", "form_name", "field", "overrides", "values"),
    CASES,
    ids=[f"{case[1]}-{case[2]}-{case[0]}" for case in CASES],
)
def test_refusal_as_json(client, smtp_server, language, code, form_name, field, overrides, values):
    response = post(client, form_name, make(form_name, overrides, language), JSON)

    assert response.status_code == 400
    assert response.get_json() == {"ok": False, "errors": {field: expected(form_name, field, code, language, values)}}
    assert smtp_server.messages == []


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize(
    ("code", "form_name", "field", "overrides", "values"),
    CASES,
    ids=[f"{case[1]}-{case[2]}-{case[0]}" for case in CASES],
)
def test_refusal_as_html_page(client, smtp_server, language, code, form_name, field, overrides, values):
    response = post(client, form_name, make(form_name, overrides, language))

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    page = html.unescape(response.get_data(as_text=True))
    catalogue = i18n.catalogue(language)
    assert f'<html lang="{language}">' in page
    assert catalogue.gettext(FORMS[form_name][field].label) in page
    assert expected(form_name, field, code, language, values) in page
    prefix = i18n.language_prefix(language)
    assert f'href="https://site.test{prefix}/{form_name}.html"' in page
    assert smtp_server.messages == []


def test_the_phone_numbers_message_says_what_to_do_in_each_language():
    field = FORMS["support"]["phone"]
    assert expected("support", "phone", "required", "en", {}) == (
        "Please give a phone number so that we can call you, or choose to be contacted by email."
    )
    assert expected("support", "phone", "required", "fr", {}).startswith("Veuillez indiquer un numéro")
    assert field.error("required") != FORMS["support"]["email"].error("required")


@pytest.mark.parametrize("contact", ["email", None])
def test_without_a_call_the_phone_number_stays_optional(client, smtp_server, contact):
    assert post(client, "support", support_form(contact=contact, phone=None), JSON).status_code == 202


@pytest.mark.parametrize(("preferred", "kept"), [("other", True), ("en", False), (None, False)])
def test_the_other_language_is_kept_only_when_other_was_chosen(client, smtp_server, preferred, kept):
    response = post(client, "support", support_form(preferred_language=preferred, other_language="Wolof"), JSON)
    assert response.status_code == 202
    assert ("Wolof" in smtp_server.messages[0].parsed().get_body(("plain",)).get_content()) is kept


def test_messages_differ_between_languages():
    field = FORMS["volunteer"]["email"]
    assert i18n.catalogue("fr").gettext(field.error("email")).startswith("Veuillez saisir")
    assert i18n.catalogue("en").gettext(field.error("email")).startswith("Please enter")


def test_several_problems_are_all_listed(client):
    form = volunteer_form(name="", email="nope", consent=None, resume=None)
    response = post(client, "volunteer", form, JSON)
    assert sorted(response.get_json()["errors"]) == ["consent", "email", "name", "resume"]


def test_repeated_field_is_refused(client, smtp_server):
    data = MultiDict(list(support_form().items()) + [("email", "second@example.org")])
    response = post(client, "support", data, JSON)
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"email": expected("support", "email", "repeated", "en", {})}


def test_repeated_lang_is_harmless(client, smtp_server):
    data = MultiDict(list(support_form().items()) + [("lang", "fr")])
    assert post(client, "support", data, JSON).status_code == 202


SCRIPTS = [
    "أمينة حداد",
    "张伟",
    "Ελένη",
    "Наталья",
    "देवनागरी नाम",
    "ชื่อไทย",
    "שרה",
    "Zoë Ødegård",
    "🌍 Sam 🤝",
    "ꦲꦤꦤ꧀",
    "Z\u0308oe\u0301",
]


@pytest.mark.parametrize("name", SCRIPTS)
def test_names_in_every_script_arrive_intact(client, smtp_server, name):
    response = post(client, "volunteer", volunteer_form(name=name, motivation=name * 3), JSON)
    assert response.status_code == 202
    message = smtp_server.messages[0].parsed()
    normal = unicodedata.normalize("NFC", name)
    assert normal in message["Subject"]
    assert normal in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    "body",
    [
        b"email=a%40example.org&consent=on&message=%FF%FE%C3%28",
        b"email=a%40example.org&consent=on&message=" + b"%00" * 10,
        b"%%%===&&&",
        b"email[]=x&consent[]=y",
        "email=a@example.org&consent=on&name=Zoë".encode("latin-1"),
    ],
)
def test_odd_urlencoded_bodies_get_a_clear_answer(client, body):
    response = client.post(
        "/forms/support",
        data=body,
        headers={**JSON, "Content-Type": "application/x-www-form-urlencoded; charset=latin-1"},
    )
    assert response.status_code in (202, 400)
    assert response.get_json()["ok"] is (response.status_code == 202)


def test_multipart_without_boundary_is_a_clear_4xx(client):
    response = client.post("/forms/volunteer", data=b"garbage", headers={**JSON, "Content-Type": "multipart/form-data"})
    assert response.status_code == 400
    assert response.get_json()["ok"] is False


def test_truncated_multipart_is_a_clear_4xx(client):
    body = b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nAmina'
    response = client.post(
        "/forms/volunteer", data=body, headers={**JSON, "Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert 400 <= response.status_code < 500
    assert response.get_json()["ok"] is False


def test_fields_of_the_wrong_type_are_refused_clearly(client, smtp_server):
    """A file where text belongs, text where the resumé belongs: each is missing, not a 500."""
    form = volunteer_form(name=(io.BytesIO(b"Amina"), "name.txt", "text/plain"), resume="cv.pdf", lang="en")
    response = post(client, "volunteer", form, JSON)
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"name": "This field is required.", "resume": "This field is required."}
    assert smtp_server.messages == []


def test_unknown_fields_are_ignored(client, smtp_server):
    response = post(client, "support", support_form(extra="whatever", **{"x" * 100: "y"}), JSON)
    assert response.status_code == 202
    assert "whatever" not in smtp_server.messages[0].data.decode()

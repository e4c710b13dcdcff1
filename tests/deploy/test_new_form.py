"""Adding a form is a definition, pages and catalogue entries: no code change.

A copy of the project gets a third form, a general contact form, exactly the
way README.md ("Adding a form") tells: a Form added to the copy's
forms_service/fields.py, its pages, thank-you pages and privacy section in
each language, its texts in each catalogue. Then it is sent end to end: the
copy's site is built, what its built form would make a browser send is posted
to the copy's service under gunicorn (started in the copy, so it serves the
copy's forms_service), and the emails arrive at a real SMTP server. The only
setting added is the one the definition names, FORMS_CONTACT_RECIPIENTS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from babel.messages.pofile import read_po, write_po
from bs4 import BeautifulSoup

from forms_service import i18n
from harness.gunicorn import Gunicorn
from harness.settings import SITE, service_settings
from harness.smtp_sink import SmtpSink
from tests.deploy.copies import build_extended_copy, i18n_plugin, read_mkdocs, write_mkdocs
from tests.forms.helpers import site_path, what_a_browser_sends

SITE_URL = "https://site.test/"
NAME = "contact"

# The definition as an operator writes it, appended to the copy's fields.py (README.md says: a Form, then in FORMS).
DEFINITION = (Path(__file__).parent / "contact_form.txt").read_text(encoding="utf-8")
REGISTERED = ("(VOLUNTEER, SUPPORT)", "(VOLUNTEER, SUPPORT, CONTACT)")

# The translator's part: French for each new text (English is the msgid itself).
TEXTS = {
    "Write to us": "Écrivez-nous",
    "Send my message": "Envoyer mon message",
    "Message {reference} from the contact form": "Message {reference} du formulaire de contact",
    "New message from the contact form (encrypted)": "Nouveau message du formulaire de contact (chiffré)",
    "We have received your message": "Nous avons bien reçu votre message",
    "Thank you for writing to CoCreate Humanity. We will answer you by email.": "Merci d’avoir écrit à CoCreate Humanity. Nous vous répondrons par e-mail.",
    "Your name": "Votre nom",
    "To know what to call you.": "Savoir comment vous appeler.",
    "To know what you would like to tell us.": "Savoir ce que vous souhaitez nous dire.",
    "I agree that CoCreate Humanity uses these details only to answer my message, as the privacy policy explains.": "J’accepte que CoCreate Humanity utilise ces informations uniquement pour répondre à mon message, "
    "comme l’explique la politique de confidentialité.",
}
CONSENT = "I agree that CoCreate Humanity uses these details only to answer my message, as the privacy policy explains."

PAGES = {
    "fr": {
        "contact.md": '---\ntitle: "Écrivez-nous"\n---\n\n# Écrivez-nous\n\n'
        "Une question sur l’association ? [Ce que nous en faisons](privacy.md#contact-form).\n\n"
        f"<!-- form: {NAME} -->\n",
        "contact-thanks.md": '---\ntitle: "Message envoyé"\n---\n\n# Merci, votre message est parti\n',
    },
    "en": {
        "contact.md": '---\ntitle: "Write to us"\n---\n\n# Write to us\n\n'
        "A question about the association? [What we do with it](privacy.md#contact-form).\n\n"
        f"<!-- form: {NAME} -->\n",
        "contact-thanks.md": '---\ntitle: "Message sent"\n---\n\n# Thank you, your message is on its way\n',
    },
}
PRIVACY_SECTIONS = {
    "fr": "## Le formulaire « Écrivez-nous » { #contact-form }\n\n"
    "### Ce que nous demandons et pourquoi { #contact-form-data }\n\n"
    f"<!-- collected: {NAME} -->\n\n",
    "en": "## The contact form { #contact-form }\n\n"
    "### What we ask for, and why { #contact-form-data }\n\n"
    f"<!-- collected: {NAME} -->\n\n",
}
PRIVACY_BEFORE = "{ #how-it-travels }"  # the section the new one goes in front of


def add_definition(project: Path) -> None:
    """The Form, appended to the definitions, and listed in FORMS."""
    fields = project / "forms_service" / "fields.py"
    text = fields.read_text(encoding="utf-8")
    head, registry = text.split("\nFORMS = ", 1)
    assert REGISTERED[0] in registry
    fields.write_text(head + "\n\n" + DEFINITION + "\nFORMS = " + registry.replace(*REGISTERED), encoding="utf-8")


def add_privacy_sections(project: Path) -> None:
    """The form's section of each privacy page: the anchor its consent links to, and its table."""
    for lang, section in PRIVACY_SECTIONS.items():
        privacy = project / "docs" / lang / "privacy.md"
        lines = privacy.read_text(encoding="utf-8").splitlines(keepends=True)
        at = next(number for number, line in enumerate(lines) if PRIVACY_BEFORE in line)
        privacy.write_text("".join([*lines[:at], section, *lines[at:]]), encoding="utf-8")


def add_pages(project: Path) -> None:
    """The form's page and thank-you page in each language, and the navigation."""
    for lang, pages in PAGES.items():
        for name, text in pages.items():
            (project / "docs" / lang / name).write_text(text, encoding="utf-8")
    settings = read_mkdocs(project)
    settings["nav"].append({"Écrivez-nous": "contact.md"})
    settings["not_in_nav"] += "contact-thanks.md\n"
    english = next(language for language in i18n_plugin(settings)["languages"] if language["locale"] == "en")
    english["nav_translations"]["Écrivez-nous"] = "Write to us"
    write_mkdocs(project, settings)


def add_catalogue_entries(project: Path) -> None:
    for lang in ("fr", "en"):
        path = project / "forms_service" / "translations" / f"{lang}.po"
        with path.open("rb") as handle:
            catalog = read_po(handle)
        for msgid, french in TEXTS.items():
            catalog.add(msgid, french if lang == "fr" else msgid)
        with path.open("wb") as handle:
            write_po(handle, catalog)


def in_copy(project: Path, code: str) -> str:
    """Run Python in the copy (its forms_service first on sys.path): this process has imported the original."""
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The copy with the contact form added, built strictly into project/site."""
    project = tmp_path_factory.mktemp("project")
    build = build_extended_copy(
        project, SITE_URL, add_definition, add_pages, add_privacy_sections, add_catalogue_entries
    )
    assert build.returncode == 0, build.stderr
    return project


def test_a_form_left_out_of_the_privacy_pages_fails_the_build(tmp_path):
    """The service would accept it, so the policy must say what it collects: the build stops, naming it."""
    build = build_extended_copy(tmp_path, SITE_URL, add_definition, add_pages, add_catalogue_entries)
    assert build.returncode != 0
    assert "privacy.md: the service accepts the form 'contact'" in build.stderr


def built(project: Path, lang: str, page: str) -> BeautifulSoup:
    return BeautifulSoup((project / "site" / site_path(lang, page)).read_text(encoding="utf-8"), "html.parser")


@pytest.fixture(scope="module")
def copy_forms(project) -> dict:
    """What the copy's definitions say, as the copy's own service reads them: each form's recipients
    setting, and each of its texts missing from a catalogue (test_catalogues.py's check)."""
    code = (
        "import json; from forms_service import i18n; from forms_service.fields import FORMS; "
        "print(json.dumps({name: {'setting': form.recipients_setting, 'missing': {lang: sorted(form.msgids - "
        "set(i18n.catalogue(lang).messages)) for lang in i18n.supported_languages()}} "
        "for name, form in FORMS.items()}))"
    )
    return json.loads(in_copy(project, code))


def test_the_copy_knows_the_form_from_its_definition_alone(copy_forms):
    assert copy_forms[NAME] == {"setting": "CONTACT_RECIPIENTS", "missing": {"en": [], "fr": []}}


def shown(lang: str, msgid: str) -> str:
    """A text as the copy's catalogue of `lang` has it: the new French above, or what this checkout has."""
    return TEXTS[msgid] if lang == "fr" and msgid in TEXTS else i18n.catalogue(lang).gettext(msgid)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_built_page_has_the_form_and_the_privacy_page_lists_what_it_collects(project, lang):
    form = built(project, lang, "/contact.html").select_one(f"form#{NAME}-form")
    assert form["action"] == f"/forms/{NAME}?lang={lang}"
    assert [control["name"] for control in form.select("[name]")] == [
        "name",
        "email",
        "message",
        "consent",
        "lang",
        "website",
    ]
    assert [control["name"] for control in form.select("[required]")] == ["email", "message", "consent"]
    assert form.select_one("button[type=submit]").get_text(strip=True) == shown(lang, "Send my message")
    consent_link = form.select_one("[name=consent]").find_parent().select_one("a")["href"]
    assert consent_link.endswith("privacy.html#contact-form")
    table = built(project, lang, "/privacy.html").find(id=f"{NAME}-form-collected")
    assert table.find_previous("h2")["id"] == f"{NAME}-form"
    rows = [[cell.get_text(strip=True) for cell in row.find_all("td")] for row in table.select("tbody > tr")]
    assert rows == [
        [shown(lang, "Your name"), shown(lang, "To know what to call you."), shown(lang, "Optional")],
        [shown(lang, "Email address"), shown(lang, "To reply to you."), shown(lang, "Required")],
        [shown(lang, "Your message"), shown(lang, "To know what you would like to tell us."), shown(lang, "Required")],
        [
            shown(lang, CONSENT),
            shown(lang, "To let you agree, knowingly, to our handling this information as described on this page."),
            shown(lang, "Required"),
        ],
    ]


@pytest.fixture(scope="module")
def sink(smtp_ca):
    server = SmtpSink(smtp_ca, mode="starttls", auth=True).start()
    yield server
    server.stop()


def test_what_the_built_form_sends_reaches_the_association_and_is_acknowledged(
    project, copy_forms, sink, smtp_ca_file, tmp_path
):
    form = built(project, "en", "/contact.html").select_one(f"form#{NAME}-form")
    sent = what_a_browser_sends(form)
    # As tests/service/helpers.py gives every form of this checkout its inbox: from the copy's definitions.
    inboxes = {answer["setting"]: [f"{name}@cch.example.org"] for name, answer in copy_forms.items()}
    settings = service_settings(sink.mail_config(), smtp_ca_file, tmp_path / "data", **inboxes)
    with Gunicorn(settings=settings, project=project) as server:
        response = requests.post(
            f"http://127.0.0.1:{server.port}{form['action']}",
            headers=SITE,
            files={name: (None, value) for name, value in sent.items()},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 303, response.text
        assert response.headers["Location"] == f"{SITE_URL}en/contact-thanks.html"
        assert (project / "site" / "en" / "contact-thanks.html").is_file()
        received = sink.handler.wait_for(2, timeout=30)
    by_recipient = {message.rcpt_tos: message.parsed() for message in received}
    association = by_recipient[(f"{NAME}@cch.example.org",)]
    acknowledgement = by_recipient[(sent["email"],)]
    assert association["Subject"].startswith("Message ") and association["Subject"].endswith(
        " du formulaire de contact"
    )  # FORMS_STAFF_LANGUAGE, French by default
    assert association["Reply-To"] == sent["email"]
    body = association.get_body(("plain",)).get_content()
    assert sent["message"] in body and sent["name"] in body
    assert acknowledgement["Subject"] == "We have received your message"
    assert sent["message"] not in acknowledgement.get_body(("plain",)).get_content()

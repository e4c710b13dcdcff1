"""Adding a language is a folder of pages, one catalogue and one mkdocs.yml entry: no code change.

A copy of the project gets Arabic (right-to-left) exactly the way
deploy/README.md tells a translator to add it, and its build is checked.
The copy carries its own forms_service, so the catalogue the hooks read is
the copy's, with the new ar.po in it.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import requests
from babel.messages.pofile import read_po, write_po
from bs4 import BeautifulSoup

from forms_service.fields import SUPPORT, VOLUNTEER
from forms_service.static_site import PROJECT
from harness.nginx import LocalNginx
from tests.deploy.copies import build_extended_copy, i18n_plugin, read_mkdocs, write_mkdocs

SITE_URL = "https://site.test/"
NEW = "ar"
MARK = "[ar] "  # stands in for the translation, so the test can tell where each text came from
LANGUAGES = {"fr": "", "en": "en/", NEW: f"{NEW}/"}


def add_pages(project: Path) -> None:
    """The translator's folder of pages (English stands in for Arabic text here)."""
    shutil.copytree(project / "docs" / "en", project / "docs" / NEW)


def add_catalogue(project: Path) -> None:
    """ar.po made from en.po, every text marked, as a translator would start from it."""
    translations = project / "forms_service" / "translations"
    with (translations / "en.po").open("rb") as handle:
        catalog = read_po(handle)
    catalog.locale = NEW
    for message in catalog:
        if message.id and isinstance(message.id, str):
            message.string = MARK + message.id
    with (translations / f"{NEW}.po").open("wb") as handle:
        write_po(handle, catalog)


def add_language_entry(project: Path) -> None:
    """The mkdocs.yml entry, modelled on the English one: name, locale, navigation titles."""
    settings = read_mkdocs(project)
    i18n = i18n_plugin(settings)
    entry = copy.deepcopy(next(language for language in i18n["languages"] if language["locale"] == "en"))
    entry.update(locale=NEW, name="العربية", extra={"og_locale": "ar_AR"})
    entry["nav_translations"] = {source: MARK + english for source, english in entry["nav_translations"].items()}
    i18n["languages"].append(entry)
    write_mkdocs(project, settings)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The copy with Arabic added, built strictly; its output folder."""
    project = tmp_path_factory.mktemp("project")
    build = build_extended_copy(project, SITE_URL, add_pages, add_catalogue, add_language_entry)
    assert build.returncode == 0, build.stderr
    return project / "site"


def soup_of(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def soup(site: Path, path: str) -> BeautifulSoup:
    return soup_of((site / path).read_text(encoding="utf-8"))


def arabic_pages(site: Path) -> list[str]:
    return sorted(path.relative_to(site).as_posix() for path in (site / NEW).glob("*.html"))


def test_arabic_pages_are_right_to_left_and_say_their_language(site):
    assert len(arabic_pages(site)) == len(list((PROJECT / "docs" / "en").glob("*.md"))) + 1  # and 404.html
    for path in arabic_pages(site):
        page = soup(site, path)
        assert page.html["lang"] == NEW, path
        assert page.body["dir"] == "rtl", path
    assert soup(site, "en/index.html").body["dir"] == "ltr"


def test_the_language_selector_and_hreflang_offer_all_three(site):
    for path in ("index.html", "en/volunteer.html", f"{NEW}/support.html"):
        page = soup(site, path)
        name = Path(path).name
        expected = {
            lang: f"{SITE_URL}{folder}{'' if name == 'index.html' else name}" for lang, folder in LANGUAGES.items()
        }
        selector = {a["hreflang"]: a["href"] for a in page.select("a.md-select__link[hreflang]")}
        hreflang = {link["hreflang"]: link["href"] for link in page.select('link[rel="alternate"][hreflang]')}
        assert selector == expected, path
        assert hreflang == {**expected, "x-default": expected["fr"]}, path


def test_navigation_and_404_come_from_the_new_entry_and_catalogue(site):
    navigation = {a.get_text(strip=True) for a in soup(site, f"{NEW}/index.html").select("nav.md-nav--primary a")}
    assert {MARK + "Home", MARK + "Become a volunteer", MARK + "Privacy"} <= navigation
    assert soup(site, f"{NEW}/404.html").select_one("article h1").get_text(strip=True) == MARK + "Page not found"


@pytest.mark.parametrize("form", [VOLUNTEER, SUPPORT], ids=lambda form: form.name)
def test_the_forms_labels_come_from_ar_po(site, form):
    page = soup(site, f"{NEW}{form.page}")
    labels = {label.get("for"): label.get_text(" ", strip=True) for label in page.select("form label")}
    assert labels, f"no form rendered on {NEW}{form.page}"
    for field in form.visible_fields:
        assert any(text.startswith(MARK + field.label) for text in labels.values()), field.name
    assert page.select_one('form input[name="lang"]')["value"] == NEW


def test_nginx_serves_the_new_languages_404_and_forms_answer_without_a_config_change(site, tmp_path):
    """The forms answer: nginx's, with no service behind it, for a form sent from an Arabic page."""
    nginx = LocalNginx(tmp_path, site).start()
    try:
        response = requests.get(f"{nginx.url}{NEW}/no-such-page.html", timeout=10)
        unavailable = requests.post(
            f"{nginx.url}forms/support",
            data={"email": "a@example.org"},
            timeout=10,
            headers={"Referer": f"{nginx.url}{NEW}/support.html"},
        )
    finally:
        nginx.stop()
    assert response.status_code == 404
    assert soup_of(response.text).html["lang"] == NEW
    assert unavailable.status_code == 502
    assert soup_of(unavailable.text).html["lang"] == NEW

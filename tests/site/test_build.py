"""What the site build writes: every page in both languages, with the metadata
search engines and social previews read, and per-language search and 404s."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from xml.etree import ElementTree

import pytest
import yaml
from bs4 import BeautifulSoup

from forms_service import i18n
from tests.site.conftest import ROOT


def mkdocs_config() -> dict:
    """mkdocs.yml as data (its !ENV values left out)."""
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!ENV", lambda loader, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=loader)


def _site_languages() -> list[dict]:
    """The i18n plugin's languages from mkdocs.yml, so a new language is tested too."""
    plugin = next(p["i18n"] for p in mkdocs_config()["plugins"] if isinstance(p, dict) and "i18n" in p)
    return plugin["languages"]


DOCS = ROOT / "docs"
LANGUAGES = [lang["locale"] for lang in _site_languages()]
DEFAULT = next(lang["locale"] for lang in _site_languages() if lang.get("default"))
OG_LOCALES = {lang["locale"]: lang["extra"]["og_locale"] for lang in _site_languages()}
PAGES = sorted(p.name for p in (DOCS / DEFAULT).glob("*.md"))


def prefix(lang: str) -> str:
    return "" if lang == DEFAULT else f"{lang}/"


def html_name(markdown: str) -> str:
    return markdown.replace(".md", ".html")


def soup(site, path: str) -> BeautifulSoup:
    return BeautifulSoup((site.dir / path).read_text(encoding="utf-8"), "html.parser")


def front_matter(lang: str, page: str) -> dict:
    text = (DOCS / lang / page).read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---", 2)[1])


def public_url(site, lang: str, page: str) -> str:
    """The address a page is known by: a folder's index page by its folder."""
    name = "" if page == "index.md" else html_name(page)
    return site.url + prefix(lang) + name


def test_strict_build_passes_without_any_warning(site):
    assert "WARNING" not in site.build.stderr, site.build.stderr


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_exists_in_both_languages(site, lang):
    if lang != DEFAULT:  # PAGES is the default language's list
        assert sorted(p.name for p in (DOCS / lang).glob("*.md")) == PAGES
    for page in PAGES:
        assert (site.dir / prefix(lang) / html_name(page)).is_file()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_html_lang_is_right_on_every_page_and_404(site, lang):
    for page in [*map(html_name, PAGES), "404.html"]:
        assert soup(site, prefix(lang) + page).html["lang"] == lang, page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_404_page_speaks_its_language_and_links_home(site, lang):
    page = soup(site, prefix(lang) + "404.html")
    article = page.select_one("article")
    assert article.find("h1").get_text(strip=True) == i18n.catalogue(lang).gettext("Page not found")
    assert article.find("a")["href"] == f"/{prefix(lang)}index.html"
    links = {link["hreflang"]: link["href"] for link in page.select('link[rel="alternate"][hreflang]')}
    homes = {other: site.url + prefix(other) for other in LANGUAGES}
    assert links == {**homes, "x-default": homes[DEFAULT]}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_hreflang_links_are_absolute_one_per_language_and_x_default(site, lang, page):
    links = {
        link["hreflang"]: link["href"]
        for link in soup(site, prefix(lang) + html_name(page)).select('link[rel="alternate"][hreflang]')
    }
    expected = {other: public_url(site, other, page) for other in LANGUAGES}
    expected["x-default"] = public_url(site, DEFAULT, page)
    assert links == expected


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_language_selector_leads_to_the_twin_page(site, lang, page):
    selector = soup(site, prefix(lang) + html_name(page)).select("a.md-select__link[hreflang]")
    assert {a["hreflang"]: a["href"] for a in selector} == {other: public_url(site, other, page) for other in LANGUAGES}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_each_page_has_its_own_description_and_open_graph(site, lang, page):
    html = soup(site, prefix(lang) + html_name(page))
    meta = front_matter(lang, page)
    assert 50 <= len(meta["description"]) <= 170, "descriptions shown in search results"
    assert html.find("meta", attrs={"name": "description"})["content"] == meta["description"]
    og = {tag["property"]: tag["content"] for tag in html.select("meta[property^='og:']")}
    assert og["og:title"] == meta["title"]
    assert og["og:description"] == meta["description"]
    assert og["og:locale"] == OG_LOCALES[lang]
    assert {tag["content"] for tag in html.select("meta[property='og:locale:alternate']")} == set(
        OG_LOCALES.values()
    ) - {OG_LOCALES[lang]}
    assert og["og:url"] == public_url(site, lang, page)


def test_descriptions_are_unique():
    descriptions = [front_matter(lang, page)["description"] for lang in LANGUAGES for page in PAGES]
    assert len(set(descriptions)) == len(descriptions)


def test_sitemap_lists_both_languages_with_alternates_and_robots_points_to_it(site):
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}
    root = ElementTree.parse(site.dir / "sitemap.xml").getroot()
    entries = {
        url.find("s:loc", ns).text: {link.get("hreflang"): link.get("href") for link in url.findall("x:link", ns)}
        for url in root.findall("s:url", ns)
    }
    for page in ["index.md", "peer-support.md", "volunteer.md", "support.md", "privacy.md"]:
        for lang in LANGUAGES:
            alternates = entries[public_url(site, lang, page)]
            assert alternates == {
                "fr": public_url(site, "fr", page),
                "en": public_url(site, "en", page),
                "x-default": public_url(site, DEFAULT, page),
            }
    english = ElementTree.parse(site.dir / "en" / "sitemap.xml").getroot()
    assert all(loc.text.startswith(site.url + "en/") for loc in english.iter(f"{{{ns['s']}}}loc"))
    robots = (site.dir / "robots.txt").read_text()
    assert f"Sitemap: {site.url}sitemap.xml" in robots.splitlines()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_search_index_holds_only_its_language(site, lang):
    index = json.loads((site.dir / prefix(lang) / "search" / "search_index.json").read_text())
    assert index["config"]["lang"] == [lang]
    pages = {doc["location"]: doc["title"] for doc in index["docs"] if "#" not in doc["location"]}
    searchable = [page for page in PAGES if not front_matter(lang, page).get("search", {}).get("exclude")]
    assert sorted(pages) == sorted(map(html_name, searchable))
    for location, title in pages.items():
        heading = soup(site, prefix(lang) + location).select_one("article h1").get_text(strip=True)
        assert title == heading, "an entry points to its own language's page"


def test_nothing_in_the_built_html_points_to_another_host(site):
    """The browser test proves it for requests; this catches links to fonts or CDNs early."""
    for path in site.pages():
        html = soup(site, path)
        for tag in html.select("script[src], link[href], img[src], iframe[src]"):
            ref = tag.get("src") or tag.get("href")
            if tag.name == "link" and tag.get("rel") in (["alternate"], ["canonical"]):
                continue
            assert not ref.startswith(("http:", "https:", "//")) or ref.startswith(site.url), (path, ref)


def test_docs_contain_no_copied_images():
    images = [p for p in DOCS.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".webp"}]
    assert not images


# Where a person comes to ask for help or to offer it: no documentation chrome.
WITHOUT_CHROME = ["index.md", "support.md", "support-thanks.md", "volunteer.md", "volunteer-thanks.md"]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", WITHOUT_CHROME)
def test_pages_for_people_show_no_side_navigation_contents_or_previous_next(site, lang, page):
    html = soup(site, prefix(lang) + html_name(page))
    # Hidden, not removed: on a phone the menu button still opens the navigation.
    assert html.select_one(".md-sidebar--primary").has_attr("hidden")
    assert html.select_one(".md-sidebar--secondary").has_attr("hidden")
    assert all(nav.has_attr("hidden") for nav in html.select("nav.md-footer__inner"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_header_carries_the_associations_mark(site, lang):
    logo = soup(site, prefix(lang) + "index.html").select_one(".md-header a.md-logo img")
    assert logo["src"].endswith("assets/images/logo.svg")
    assert (site.dir / "assets" / "images" / "logo.svg").is_file()


def test_the_service_worker_keeps_the_crisis_pages_and_what_they_load_versioned_by_their_content(site):
    """sw.js as published: the home and support pages of every language and every file of this site
    they load, nothing of /forms/, and a version that is the hash of those files (a release that
    changes one of them replaces the readers' copy)."""
    worker = (site.dir / "sw.js").read_text(encoding="utf-8")
    kept = json.loads(re.search(r"^const KEPT = (\[.*\]);$", worker, re.M).group(1))
    version = re.search(r'^const VERSION = "([0-9a-f]{16})";$', worker, re.M).group(1)
    pages = {prefix(lang) + page for lang in LANGUAGES for page in ("index.html", "support.html")}
    assert pages <= set(kept)
    for page in pages:
        loaded = soup(site, page).select("link[rel=stylesheet], link[rel=icon], script[src], img[src]")
        for tag in loaded:
            path = posixpath.normpath(posixpath.join(posixpath.dirname(page), tag.get("href") or tag.get("src")))
            assert path in kept, (page, path)
    assert not [path for path in kept if path.startswith("forms") or not (site.dir / path).is_file()]
    digest = hashlib.sha256()
    for path in kept:
        digest.update(path.encode() + b"\0" + (site.dir / path).read_bytes())
    assert version == digest.hexdigest()[:16]

"""The site in a real browser: search, language, the theme's scripts, no-JS.

Every page's privacy (no request leaves the origin), console and accessibility are checked in one visit
per page, behind the deploy nginx: tests/deploy/test_browser.py."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.site.helpers import open_search

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("folder, query", [("en/", "volunteer"), ("", "bénévole")])
def test_search_stays_within_the_readers_language(site, page, folder, query):
    page.goto(site.url + folder + "index.html", wait_until="networkidle")
    open_search(page)
    page.keyboard.type(query, delay=30)
    results = page.locator(".md-search-result__list a.md-search-result__link")
    results.first.wait_for()
    paths = [urlsplit(href).path for href in results.evaluate_all("links => links.map(a => a.href)")]
    assert paths
    for path in paths:
        assert path.startswith("/en/") == (folder == "en/"), path


INTERACTIONS = {
    "mouse move": lambda page: page.mouse.move(40, 40),
    "tab key": lambda page: page.keyboard.press("Tab"),
    "wheel": lambda page: page.mouse.wheel(0, 300),
    "tap": lambda page: page.locator("article h1").tap(),
}


@pytest.mark.parametrize("interaction", INTERACTIONS)
def test_theme_scripts_wait_for_the_first_interaction(site, browser, interaction):
    context = browser.new_context(has_touch=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(urlsplit(request.url).path))
    page.goto(site.url + "en/peer-support.html", wait_until="networkidle")
    # Read without touching: the page without JavaScript, and none of Material's work.
    assert page.locator("html").get_attribute("class") == "no-js"
    assert not [path for path in requested if "/bundle." in path or path.endswith("search_index.json")]
    assert page.locator("article h1").is_visible()

    INTERACTIONS[interaction](page)
    page.locator("html.js").wait_for(state="attached")
    page.wait_for_load_state("networkidle")
    # Mounted, not only loaded: Material starts the search worker, and places the
    # sidebars under the header only once its DOMContentLoaded has come.
    assert "/en/search/search_index.json" in requested
    assert [path for path in requested if "/workers/search." in path]
    sidebars = page.locator("[data-md-component=sidebar]:not([hidden])")  # the contents; the tabs are the navigation
    sidebars.first.wait_for()
    assert all(
        "top:" in (style or "") for style in sidebars.evaluate_all("els => els.map(e => e.getAttribute('style'))")
    )
    assert page.locator("label.md-search__icon, .md-search__input").first.is_visible()
    context.close()


def test_a_search_result_opens_with_its_words_highlighted(site, page):
    # Following a result is an interaction already: Material's scripts run at once.
    page.goto(site.url + "en/peer-support.html?h=experiential", wait_until="networkidle")
    marks = page.locator("article mark[data-md-highlight]")
    marks.first.wait_for()
    assert marks.first.inner_text().lower() == "experiential"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_language_selector_switches_to_the_twin_page(site, page, lang):
    other = "en" if lang == "fr" else "fr"
    here = site.url + ("en/" if lang == "en" else "") + "volunteer.html"
    there = site.url + ("en/" if other == "en" else "") + "volunteer.html"
    page.goto(here)
    page.locator(".md-header .md-select").hover()
    page.locator(f"a.md-select__link[hreflang='{other}']").click()
    page.wait_for_url(there)
    assert page.locator("html").get_attribute("lang") == other


def test_content_and_navigation_readable_without_javascript(site, kept_page):
    page = kept_page(site.url, java_script_enabled=False)
    page.goto(site.url + "en/index.html")
    assert page.locator("h1").first.is_visible()
    nav = page.locator("nav.md-nav--primary a.md-nav__link[href$='peer-support.html']").first
    href = nav.get_attribute("href")
    page.goto(site.url + "en/" + href.lstrip("./"))
    assert page.locator("article h1").is_visible()
    assert page.locator("article p").first.is_visible()

"""The site as a person in distress meets it, on a phone and a desktop, with scripts and without.

Help in the first screen, crisis numbers large enough to tap on every page, no page wider
than the screen, no word cut short at 200 % text, the site's navigation at desktop width, the
reader's dark scheme, and a header that stays put when Material's scripts wake
(overrides/assets/javascripts/theme-loader.js). Few page loads: one page per context is
reused, and the screen's width changes on it.
"""

from __future__ import annotations

import pytest

from tests.site.helpers import clipped_text, wake_theme_scripts
from tests.site.test_build import html_name, mkdocs_config

pytestmark = pytest.mark.browser

WIDTHS = (320, 375, 768, 1280)
PHONE = {"width": 375, "height": 667}
SMALL_PHONE = {"width": 320, "height": 568}
DESKTOP = {"width": 1280, "height": 800}
TARGET = 24  # px, WCAG 2.5.8 target size (minimum)
FOLDERS = {"fr": "", "en": "en/"}
HEADER_BUTTONS = {
    "logo": ".md-header .md-logo",
    "menu": ".md-header label[for=__drawer]",
    "languages": ".md-header .md-select",
}


def small_targets(page, selector: str) -> list[str]:
    """The links matching selector, visible and smaller than TARGET in either dimension."""
    return page.locator(selector).evaluate_all(
        """(links, min) => links.map(a => [a.textContent.trim(), a.getBoundingClientRect()])
            .filter(([, box]) => box.width && (box.width < min || box.height < min))
            .map(([text, box]) => `${text} ${Math.round(box.width)}x${Math.round(box.height)}`)""",
        TARGET,
    )


SETTLED = """Promise.all(document.getAnimations().filter(a => a.playState === "running")
    .map(a => a.finished.catch(() => null)))"""
"""Resolves once every running animation and transition of the page has ended."""


def overflows(page) -> list[str]:
    """The widths of WIDTHS at which the page scrolls sideways (the viewport's height is kept)."""
    height = page.viewport_size["height"]
    wider = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        # Material's search field grows to its width in a transition; measure the settled page. (Awaited
        # rather than polled: Playwright's polling evaluates a string, which the deploy CSP forbids.)
        page.evaluate(SETTLED)
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        if scroll_width > inner_width:
            wider.append(f"{width}: {scroll_width}")
    return wider


def in_language(paths: list[str], lang: str) -> list[str]:
    """The paths of `lang`'s pages: those in its folder (French at the root); each sweep of every page runs
    once per language, so that two workers share it."""
    others = tuple(folder for other, folder in FOLDERS.items() if other != lang and folder)
    return [path for path in paths if path.startswith(FOLDERS[lang]) and not path.startswith(others)]


def pages_of(site, lang: str) -> list[str]:
    return in_language([path for path in site.pages() if not path.startswith(("assets/", "search/"))], lang)


def wholly_within(box: dict, screen: dict) -> bool:
    """Whether an element's box lies entirely inside the first screen (the page as it opens)."""
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= screen["width"]
        and box["y"] + box["height"] <= screen["height"]
    )


def site_navigation(page) -> list[str]:
    """The addresses of the site's pages that the tabs under the header offer, as a reader sees them."""
    return page.locator(".md-tabs a.md-tabs__link:visible").evaluate_all(
        "links => links.map(a => new URL(a.href).pathname.split('/').pop())"
    )


def sideways(page, when: str) -> list[str]:
    """overflows(page), said as problems: the page was opened at PHONE size, `when` says how far along."""
    return [f"{when} at {width}" for width in overflows(page)]


def footer_and_navigation(page) -> list[str]:
    """The crisis numbers of the footer, a link to a directory of helplines and targets large enough to
    tap; and at desktop width (where overflows ends), the site's pages under the header."""
    found = []
    line = page.locator(".cch-crisis-line")
    numbers = line.locator("a[href^='tel:']").evaluate_all("links => links.map(a => a.textContent)")
    if sorted(numbers) != ["112", "143", "144"]:
        found.append(f"footer numbers {numbers}")
    if line.locator("a[href='https://findahelpline.com']").count() != 1:
        found.append("no link to an international directory of helplines in the footer")
    found += [f"small footer target {t}" for t in small_targets(page, ".cch-crisis-line a[href^='tel:']")]
    if sorted(site_navigation(page)) != NAVIGATION:
        found.append(f"desktop navigation {site_navigation(page)}")
    return found


@pytest.mark.parametrize("lang", FOLDERS)
def test_without_scripts_no_page_scrolls_sideways_and_every_footer_gives_the_crisis_numbers(site, kept_page, lang):
    """The same with scripts, once they wake: tests/deploy/test_browser.py's sweep of every page."""
    page = kept_page(site.url, java_script_enabled=False)
    problems: dict[str, list[str]] = {}
    for path in pages_of(site, lang):
        page.set_viewport_size(PHONE)
        page.goto(site.url + path, wait_until="networkidle")
        found = sideways(page, "without scripts") + footer_and_navigation(page)
        if found:
            problems[path] = found
    assert problems == {}


NAVIGATION = sorted(html_name(page) for entry in mkdocs_config()["nav"] for page in entry.values())
"""The pages of mkdocs.yml's nav, as every page offers them at desktop width."""


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_help_is_in_the_first_phone_screen(site, kept_page, javascript):
    """On the home, a number to tap and the way to the whole crisis guidance; on the support page, 143
    and the way to the form; on a small phone too, in every language, with scripts and without."""
    page = kept_page(site.url, java_script_enabled=javascript)
    missing = []
    for lang, screen in ((lang, screen) for lang in FOLDERS for screen in (PHONE, SMALL_PHONE)):
        where = f"{lang} {screen['width']}x{screen['height']}"
        page.set_viewport_size(screen)
        page.goto(site.url + FOLDERS[lang] + "index.html")
        call = page.locator("article a[href^='tel:']").first
        guidance = page.locator("article .cch-urgent a[href$='support.html#emergency']")
        if not (wholly_within(call.bounding_box(), screen) and wholly_within(guidance.bounding_box(), screen)):
            missing.append(f"home {where}: a number to tap and the crisis guidance")
        buttons = [
            page.locator(f"article a.md-button[href$='{target}']").first
            for target in ("support.html", "volunteer.html")
        ]
        if screen == PHONE and not all(wholly_within(button.bounding_box(), screen) for button in buttons):
            missing.append(f"home {where}: the two ways in")
        # A button says what it is by its shape, not an underline; a heading reads as one.
        assert all(button.evaluate("a => getComputedStyle(a).textDecorationLine") == "none" for button in buttons)
        assert int(page.locator("article h1").evaluate("h => getComputedStyle(h).fontWeight")) >= 600

        page.goto(site.url + FOLDERS[lang] + "support.html")
        if screen == PHONE:
            if not wholly_within(page.locator("article .crisis a[href='tel:143']").first.bounding_box(), screen):
                missing.append(f"support {where}: 143")
            if not wholly_within(page.locator("article a.md-button[href='#ask']").bounding_box(), screen):
                missing.append(f"support {where}: the way to the form")
    assert missing == []
    # Moving by headings reaches the crisis box: its title is one.
    box = page.locator("article .admonition.crisis")
    assert box.locator("> h2.admonition-title").get_attribute("id") == "emergency"
    page.locator("article a.md-button[href='#ask']").click()
    page.wait_for_url("**#ask")
    assert page.locator("form.cch-form").bounding_box()["y"] < PHONE["height"]


@pytest.mark.parametrize("lang", FOLDERS)
def test_no_word_is_cut_short_at_200_percent_text_on_a_small_phone(site, browser, lang):
    """WCAG 1.4.4: the reader's text size doubled (the browser's own font setting), on a 320 px screen,
    every page and its menu: a long word wraps or breaks, none runs past an edge or is cut by one."""
    context = browser.new_context(viewport=SMALL_PHONE)
    page = context.new_page()
    session = context.new_cdp_session(page)
    session.send("Page.enable")
    session.send("Page.setFontSizes", {"fontSizes": {"standard": 32, "fixed": 26}})
    problems = {}
    for path in pages_of(site, lang):
        page.goto(site.url + path, wait_until="networkidle")
        found = clipped_text(page)
        page.locator(".md-header label[for=__drawer]").click()
        page.evaluate(SETTLED)
        found += [f"in the menu: {problem}" for problem in clipped_text(page)]
        if found:
            problems[path] = found
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "40px"  # Material's 125 % of 32
    assert problems == {}
    context.close()


def test_the_site_follows_a_dark_system_scheme_from_the_first_paint(site, browser):
    """Before any interaction (Material's own scripts wait for one), the palette follows the system."""
    context = browser.new_context(color_scheme="dark", viewport=PHONE)
    page = context.new_page()
    page.goto(site.url + "en/index.html")
    assert page.locator("body").get_attribute("data-md-color-scheme") == "slate"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert max(int(value) for value in background[background.index("(") + 1 : -1].split(",")[:3]) < 64, background
    wake_theme_scripts(page)
    assert page.locator("body").get_attribute("data-md-color-scheme") == "slate"
    page.emulate_media(color_scheme="light")  # the system turns light: the site follows
    page.wait_for_function("document.body.dataset.mdColorScheme === 'default'")
    context.close()


@pytest.mark.parametrize("lang", FOLDERS)
def test_crisis_guidance_is_at_body_size_with_targets_to_tap_and_by_the_urgent_box(site, page, lang):
    page.set_viewport_size(PHONE)
    page.goto(site.url + FOLDERS[lang] + "support.html")
    box = page.locator("article .admonition.crisis")
    body_size = page.locator("article > p").first.evaluate("p => getComputedStyle(p).fontSize")
    assert box.evaluate("e => getComputedStyle(e).fontSize") == body_size
    assert sorted(set(box.locator("a[href^='tel:']").all_inner_texts())) == ["112", "143", "144"]
    assert box.locator("a[href='https://findahelpline.com']").count() == 1
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        assert small_targets(page, "a[href^='tel:']") == []

    # Ticking "urgent" is where someone in danger looks: the numbers are said there too.
    hint = page.locator("#support-urgent-hint").inner_text()
    assert all(number in hint for number in ("144", "143", "112", "findahelpline.com")), hint


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_header_keeps_its_place_when_the_scripts_wake(site, page, viewport):
    page.set_viewport_size(viewport)
    page.goto(site.url + "en/index.html", wait_until="networkidle")

    def boxes():
        return {name: page.locator(selector).bounding_box() for name, selector in HEADER_BUTTONS.items()}

    before = boxes()
    # The menu button is the phone's way to the navigation; a desktop shows no such button.
    assert before["logo"] and before["languages"] and bool(before["menu"]) == (viewport == PHONE), before
    wake_theme_scripts(page)
    assert boxes() == before
    # The place kept for search is search, now that it works.
    assert page.locator(".md-header label[for=__search]:visible, .md-search__input:visible").count()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_language_button_opens_the_languages_and_never_search(site, browser, viewport):
    context = browser.new_context(viewport=viewport, has_touch=True)
    page = context.new_page()
    page.goto(site.url + "en/support.html", wait_until="networkidle")
    button = page.locator(".md-header .md-select").bounding_box()
    centre = (button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    # A reader aims at the button before the scripts wake; moving there wakes them.
    page.mouse.move(*centre)
    page.locator("html.js").wait_for(state="attached")
    page.wait_for_load_state("networkidle")
    page.mouse.click(*centre)
    french = page.locator("a.md-select__link[hreflang='fr']")
    french.wait_for(state="visible")
    assert not page.locator("#__search").is_checked()
    french.click()
    page.wait_for_url(site.url + "support.html")
    context.close()


def test_the_first_slash_opens_search(site, page):
    page.goto(site.url + "en/peer-support.html", wait_until="networkidle")
    assert page.locator("html").get_attribute("class") == "no-js"
    page.keyboard.press("/")
    page.wait_for_function("document.getElementById('__search').checked")
    page.locator(".md-search__input:focus").wait_for()
    page.keyboard.type("listening", delay=30)
    page.locator(".md-search-result__list a.md-search-result__link").first.wait_for()

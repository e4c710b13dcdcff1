"""The site as a person in distress meets it, on a phone and a desktop, with scripts and without.

Help in the first screen, crisis numbers large enough to tap on every page, no page wider
than the screen, and a header that stays put when Material's scripts wake
(overrides/assets/javascripts/theme-loader.js). Few page loads: one page per context is
reused, and the screen's width changes on it.
"""

from __future__ import annotations

import pytest

from tests.site.helpers import wake_theme_scripts

pytestmark = pytest.mark.browser

WIDTHS = (320, 375, 768, 1280)
PHONE = {"width": 375, "height": 667}
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


def overflows(page) -> list[str]:
    """The widths of WIDTHS at which the page scrolls sideways (the viewport's height is kept)."""
    height = page.viewport_size["height"]
    wider = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        # Material's search field grows to its width in a transition; measure the settled page.
        page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        if scroll_width > inner_width:
            wider.append(f"{width}: {scroll_width}")
    return wider


def pages_of(site) -> list[str]:
    return [path for path in site.pages() if not path.startswith(("assets/", "search/"))]


@pytest.mark.parametrize("scripts", ["with scripts", "without scripts"])
def test_no_page_scrolls_sideways_and_every_footer_gives_the_crisis_numbers(site, browser, scripts):
    context = browser.new_context(java_script_enabled=scripts == "with scripts", viewport=PHONE)
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    for path in pages_of(site):
        page.set_viewport_size(PHONE)
        page.goto(site.url + path, wait_until="networkidle")
        found = [f"before the first interaction at {width}" for width in overflows(page)]
        if scripts == "with scripts":
            wake_theme_scripts(page)
            found += [f"after the first interaction at {width}" for width in overflows(page)]
        line = page.locator(".cch-crisis-line")
        numbers = line.locator("a[href^='tel:']").evaluate_all("links => links.map(a => a.textContent)")
        if sorted(numbers) != ["112", "143", "144"]:
            found.append(f"footer numbers {numbers}")
        if line.locator("a[href='https://findahelpline.com']").count() != 1:
            found.append("no link to an international directory of helplines in the footer")
        found += [f"small footer target {t}" for t in small_targets(page, ".cch-crisis-line a[href^='tel:']")]
        if found:
            problems[path] = found
    context.close()
    assert problems == {}


@pytest.mark.parametrize("lang", FOLDERS)
def test_help_is_in_the_first_phone_screen(site, browser, lang):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(site.url + FOLDERS[lang] + "index.html")
    for target in ("support.html", "volunteer.html"):
        link = page.locator(f"article a.md-button[href$='{target}']").first
        assert link.bounding_box()["y"] + link.bounding_box()["height"] <= PHONE["height"], target
        # A button says what it is by its shape, not an underline.
        assert link.evaluate("a => getComputedStyle(a).textDecorationLine") == "none"
    # A heading that reads as one: firm, not Material's thin grey.
    assert int(page.locator("article h1").evaluate("h => getComputedStyle(h).fontWeight")) >= 600

    page.goto(site.url + FOLDERS[lang] + "support.html")
    to_form = page.locator("article a.md-button[href='#ask']").first
    assert to_form.bounding_box()["y"] + to_form.bounding_box()["height"] <= PHONE["height"]
    to_form.click()
    page.wait_for_url("**#ask")
    assert page.locator("form.cch-form").bounding_box()["y"] < PHONE["height"]
    context.close()


@pytest.mark.parametrize("lang", FOLDERS)
def test_crisis_guidance_is_at_body_size_with_targets_to_tap_and_by_the_urgent_box(site, browser, lang):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
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
    context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_header_keeps_its_place_when_the_scripts_wake(site, browser, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
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
    context.close()


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

"""Chromium through the deploy nginx, as readers meet the site: every page under its Content-Security-Policy
without a single violation, a request to another host, a console error or an axe violation, in the light
scheme and the dark one; and the offline copy the service worker keeps, under the same headers."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from harness.nginx import PROJECT
from tests.site.helpers import axe_violations, open_search, wake_theme_scripts
from tests.site.test_layout import FOLDERS, PHONE, footer_and_navigation, in_language, sideways

pytestmark = pytest.mark.browser

# Violations are reported to the page as events; keep them where the test can read them.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def page(browser):
    """A fresh context whose pages record CSP violations from their first script on."""
    context = browser.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("lang", FOLDERS)
def test_every_page_passes_the_csp_stays_home_and_has_no_console_error_nor_axe_violation(deployed, page, lang):
    """One visit per page checks all five (page loads are most of a browser test's cost): the policy, no
    request to another host (Material's scripts, the search worker and the index included), no error,
    WCAG as every reader first sees the page, then once Material's scripts have run (and registered the
    service worker), in the dark scheme too (the system turning dark: the page follows it), and with
    search open; and the layout, opened on a phone, before and after the scripts wake: no width of
    tests/site/test_layout.py's WIDTHS scrolls sideways, the footer gives the crisis numbers, and the
    desktop offers the site's pages (the same without scripts: test_layout.py)."""
    origin = urlsplit(deployed.url).netloc
    problems: dict[str, list[str]] = {"csp": [], "foreign requests": [], "console": [], "axe": [], "layout": []}
    page.on(
        "request",
        lambda request: urlsplit(request.url).netloc != origin and problems["foreign requests"].append(request.url),
    )
    page.on(
        "console", lambda message: message.type == "error" and problems["console"].append(f"{page.url}: {message.text}")
    )
    page.on("pageerror", lambda error: problems["console"].append(f"{page.url}: {error}"))
    for path in in_language(deployed.pages(), lang):
        page.set_viewport_size(PHONE)
        page.goto(deployed.url + path, wait_until="networkidle")
        problems["layout"] += [f"{path}: {found}" for found in sideways(page, "before the first interaction")]
        problems["axe"] += [f"{path} before the first interaction: {found}" for found in axe_violations(page)]
        wake_theme_scripts(page)
        problems["layout"] += [f"{path}: {found}" for found in sideways(page, "after the first interaction")]
        problems["layout"] += [f"{path}: {found}" for found in footer_and_navigation(page)]
        problems["axe"] += [f"{path} after the first interaction: {found}" for found in axe_violations(page)]
        page.emulate_media(color_scheme="dark")
        page.locator("body[data-md-color-scheme=slate]").wait_for(state="attached")
        problems["axe"] += [f"{path} in the dark scheme: {found}" for found in axe_violations(page)]
        page.emulate_media(color_scheme="light")
        open_search(page)
        problems["csp"] += [f"{path}: {violation}" for violation in page.evaluate("window.__violations")]
    assert problems == {"csp": [], "foreign requests": [], "console": [], "axe": [], "layout": []}


def failed_requests(page) -> list[str]:
    """Every answer of 400 or more the page gets, as it comes."""
    failures: list[str] = []
    page.on(
        "response", lambda response: response.status >= 400 and failures.append(f"{response.status} {response.url}")
    )
    return failures


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_unavailable_page_works_at_the_address_the_form_posted_to(unavailable, page, lang):
    """Without the forms script (a plain post), the browser shows nginx's answer at /forms/support:
    the page's styles, scripts, search and links must resolve from there."""
    failures = failed_requests(page)
    folder = "" if lang == "fr" else f"{lang}/"
    page.goto(unavailable.url + folder + "support.html")
    with page.expect_navigation() as navigation:
        page.evaluate("document.getElementById('support-form').submit()")  # as without JavaScript
    assert navigation.value.status == 502
    assert page.url == unavailable.url + f"forms/support?lang={lang}"  # the form's address carries its language
    assert page.locator("html").get_attribute("lang") == lang
    sheets = page.evaluate("[...document.styleSheets].map(sheet => sheet.href)")
    assert unavailable.url + "assets/stylesheets/identity.css" in sheets
    assert (
        page.locator("article a[href='support.html']").evaluate("a => a.href")
        == unavailable.url + folder + "support.html"
    )
    open_search(page)  # Material's scripts, the search worker and the language's index
    page.keyboard.type("mission")
    page.locator(".md-search-result__item").first.wait_for()
    assert failures == [f"502 {unavailable.url}forms/support?lang={lang}"]
    assert page.evaluate("window.__violations") == []


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_forms_script_says_what_to_do_in_the_pages_language(unavailable, page, lang):
    folder = "" if lang == "fr" else f"{lang}/"
    page.goto(unavailable.url + folder + "support.html")
    page.locator("#support-email").fill("aidworker@example.org")
    page.locator("#support-consent").check()
    page.locator("#support-form [type=submit]").click()
    message = json.loads((PROJECT / "docs" / lang / "forms-unavailable.json").read_text(encoding="utf-8"))["error"]
    expect(page.locator("#support-form .cch-form__summary-message")).to_have_text(message)
    assert page.url == unavailable.url + folder + "support.html"


def test_after_one_visit_the_crisis_pages_open_offline_and_nothing_else_is_kept(deployed, page):
    """The service worker, registered at the first interaction on any page, keeps the home and support
    pages of every language: offline (voice but no data), they open with their numbers and styles. It
    keeps nothing of /forms/, and a new release's copy replaces the old one (an older cache is deleted)."""
    page.goto(deployed.url + "en/peer-support.html", wait_until="networkidle")
    page.evaluate("caches.open('cch-offline-an-older-release')")
    wake_theme_scripts(page)
    # Once activated, it takes this page over (clients.claim): from then on the copy is complete.
    page.evaluate("""new Promise((taken) => navigator.serviceWorker.controller
        ? taken() : navigator.serviceWorker.addEventListener("controllerchange", taken))""")
    kept = page.evaluate("""async () => {
        const names = await caches.keys();
        const requests = await Promise.all(names.map(async (name) => (await (await caches.open(name)).keys())));
        return { names, urls: requests.flat().map((request) => new URL(request.url).pathname) };
    }""")
    assert len(kept["names"]) == 1 and kept["names"][0].startswith("cch-offline-"), kept["names"]
    assert {"/index.html", "/support.html", "/en/index.html", "/en/support.html"} <= set(kept["urls"])
    assert not [url for url in kept["urls"] if url.startswith("/forms/")]

    page.context.set_offline(True)
    for path in ("support.html", "en/support.html", "en/"):
        page.goto(deployed.url + path)
        expect(page.locator("article a[href='tel:143']").first).to_be_visible()
        assert page.evaluate("getComputedStyle(document.querySelector('.md-header')).position") == "sticky", path
    page.context.set_offline(False)

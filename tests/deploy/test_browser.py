"""Chromium through the deploy nginx: the site runs under its Content-Security-Policy without a single violation."""

from __future__ import annotations

import pytest

from tests.site.helpers import open_search

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


def test_every_page_passes_the_csp_without_console_errors(deployed, page):
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    for path in deployed.pages():
        page.goto(deployed.url + path, wait_until="networkidle")
        # Material's scripts, the search worker and the language's index: the policy must allow them too.
        open_search(page)
        problems += [f"{path}: {violation}" for violation in page.evaluate("window.__violations")]
    assert problems == []

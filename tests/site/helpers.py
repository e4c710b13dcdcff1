"""What a reader does in the browser tests of the site."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

AXE = Axe()


def wake_theme_scripts(page) -> None:
    """Move the mouse, as a reader would, and wait until Material's scripts have run.

    They wait for a first interaction (overrides/assets/javascripts/theme-loader.js);
    running, they swap the page's "no-js" class for "js" and fetch the search index.
    """
    page.mouse.move(40, 40)
    page.locator("html.js").wait_for(state="attached")
    page.wait_for_load_state("networkidle")


def open_search(page) -> None:
    """Open search as a reader would: a first interaction (the worker and index load), then `/`."""
    wake_theme_scripts(page)
    page.keyboard.press("/")


def axe_violations(page) -> list[str]:
    """axe-core's WCAG violations on the page as it is now, each with the elements at fault."""
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in AXE.run(page).response["violations"]]

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
    """axe-core's WCAG violations on the page as it is now, each with the elements at fault.

    axe is put in a document once (sending its 570 KB each time, and axe starting afresh, cost the
    browser sweeps a third of their CPU), and only the violations come back."""
    if page.evaluate("typeof axe === 'undefined'"):
        page.evaluate(AXE.axe_script)
    return page.evaluate(
        """axe.run({resultTypes: ["violations"]})
            .then(results => results.violations.map(v => `${v.id}: ${JSON.stringify(v.nodes.map(n => n.target))}`))"""
    )


# Every piece of text a reader can see that runs past the screen's edge (which the page cannot be
# scrolled to: Material's html has overflow-x: hidden), or past the edge of a box that hides what
# overflows it (overflow: hidden or clip, an ellipsis) with no scrolling box in between (a wide table
# scrolls: its words are all there). Text wholly outside a box that hides it (a closed menu drawer,
# a panel not shown) is not seen at all, so not cut.
CLIPPED_TEXT = """() => {
  const problems = new Set();
  const hides = (overflow) => overflow === "hidden" || overflow === "clip";
  const scrolls = (overflow) => overflow === "auto" || overflow === "scroll";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    const text = node.textContent.trim();
    if (!text || element.closest("[aria-hidden=true], script, style, template")
        || !element.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) {
      continue;
    }
    const range = document.createRange();
    range.selectNodeContents(node);
    const name = `${element.tagName.toLowerCase()}.${element.className} "${text.slice(0, 40)}"`;
    if (getComputedStyle(element).textOverflow === "ellipsis" && element.scrollWidth > element.clientWidth + 1) {
      problems.add(`${name}: ellipsis`);
    }
    for (const line of [...range.getClientRects()].filter((rect) => rect.width && rect.height)) {
      let scrollsX = false, scrollsY = false;
      for (let box = element; box && box !== document.documentElement; box = box.parentElement) {
        const style = getComputedStyle(box);
        if (style.overflowX === "visible" && style.overflowY === "visible") {
          continue;
        }
        const edge = box.getBoundingClientRect();
        if (edge.width > 2 && edge.height > 2) {
          const outside = line.right <= edge.left || line.left >= edge.right || line.bottom <= edge.top || line.top >= edge.bottom;
          if (outside && !scrolls(style.overflowX) && !scrolls(style.overflowY)) {
            break;  // a panel out of view (a closed menu), not text cut short
          }
          const across = line.left < edge.left - 1 || line.right > edge.right + 1;
          const down = line.top < edge.top - 1 || line.bottom > edge.bottom + 1;
          if ((across && hides(style.overflowX) && !scrollsX) || (down && hides(style.overflowY) && !scrollsY)) {
            problems.add(`${name}: cut by ${box.tagName.toLowerCase()}.${box.className}`);
            break;
          }
        }
        scrollsX ||= scrolls(style.overflowX);
        scrollsY ||= scrolls(style.overflowY);
      }
      if (!scrollsX && line.right > 0 && line.left < innerWidth && (line.left < -1 || line.right > innerWidth + 1)) {
        problems.add(`${name}: past the screen's edge`);
      }
    }
  }
  return [...problems];
}"""


def clipped_text(page) -> list[str]:
    """The text on the page as it is now that a reader cannot see whole (CLIPPED_TEXT)."""
    return page.evaluate(CLIPPED_TEXT)

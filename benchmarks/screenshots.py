"""Screenshots of the pages a person in distress meets first, for a reviewer's eyes.

Builds the site, serves it on loopback as the tests do, and writes, for the home
and support pages in every language, on a phone (375 x 667), a small phone (320 x 568)
and a desktop (1280 px), in the light scheme and in the dark one, the first screen and
the whole page, as a reader first sees them (before any interaction: Material's
scripts wait for one, see overrides/assets/javascripts/theme-loader.js):

    .venv/bin/python -m benchmarks.screenshots [--out benchmarks/results/screenshots]

Needs Debian's chromium (Playwright drives it, as in the tests).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from forms_service.static_site import build_site, static_site
from harness.browser import CHROMIUM, CHROMIUM_ARGS

HERE = Path(__file__).resolve().parent
PAGES = {"home": "index.html", "support": "support.html"}
LANGUAGES = {"fr": "", "en": "en/"}
SCREENS = {"phone": (375, 667), "small-phone": (320, 568), "desktop": (1280, 800)}
SCHEMES = ("light", "dark")


def shoot(url: str, out: Path) -> list[Path]:
    """Every page of PAGES in every language on every screen: first screen and whole page."""
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for (screen, (width, height)), scheme in itertools.product(SCREENS.items(), SCHEMES):
            page = browser.new_page(viewport={"width": width, "height": height}, color_scheme=scheme)
            for lang, folder in LANGUAGES.items():
                for name, path in PAGES.items():
                    page.goto(url + folder + path, wait_until="networkidle")
                    for whole in (False, True):
                        target = out / f"{name}-{lang}-{screen}-{scheme}{'-full' if whole else ''}.png"
                        page.screenshot(path=target, full_page=whole)
                        written.append(target)
            page.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of the home and support pages.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the paths written are the output
    with tempfile.TemporaryDirectory() as site_dir:
        server = make_server("127.0.0.1", 0, static_site(site_dir), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/"
        try:
            build = build_site(site_dir, url)
            if build.returncode:
                raise SystemExit(build.stderr)
            for path in shoot(url, args.out):
                print(path)
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()

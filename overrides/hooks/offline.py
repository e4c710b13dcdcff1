"""Publish the service worker (overrides/sw.js) with what it keeps and the release's version.

It keeps the home and the page of the support form in every language, and
every file of this site those pages load (stylesheets, images, scripts), so
that the crisis numbers open offline after one visit. The list is read from
the built pages themselves, so a theme update or a new stylesheet is kept
without a change here; the version is a hash of the kept files, so a release
that changes any of them replaces the readers' copy at their next visit, and
one that changes none keeps it.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

from forms_service.fields import FORMS

WORKER = "sw.js"
PAGES = ("/index.html", FORMS["support"].page)
"""Site paths (Form.page style) kept in every language."""
VERSION = re.compile(r'^const VERSION = "[^"]*";$', re.M)
KEPT = re.compile(r"^const KEPT = \[\];$", re.M)


class _Loads(HTMLParser):
    """The addresses a page loads to show itself: stylesheets, icons, images, scripts."""

    def __init__(self):
        super().__init__()
        self.addresses: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("rel") in ("stylesheet", "icon"):
            self.addresses.append(attrs.get("href") or "")
        elif tag in ("script", "img") and attrs.get("src"):
            self.addresses.append(attrs["src"])


@event_priority(-120)  # after hooks/languages.py has written the last language's files
def on_post_build(config):
    i18n = config.plugins["i18n"]
    if i18n.building:
        return
    site = Path(config.site_dir)
    pages = [
        (("" if lang == i18n.default_language else f"{lang}/") + path.lstrip("/"))
        for lang in i18n.build_languages
        for path in PAGES
    ]
    kept = sorted({*pages, *(address for page in pages for address in _loaded(site, page))})
    version = hashlib.sha256()
    for path in kept:
        version.update(path.encode() + b"\0" + (site / path).read_bytes())
    worker = site / WORKER
    source = worker.read_text(encoding="utf-8")
    if not (VERSION.search(source) and KEPT.search(source)):
        raise PluginError(f"overrides/{WORKER}: no `const VERSION = ...;` or `const KEPT = [];` line to fill in")
    source = VERSION.sub(f"const VERSION = {json.dumps(version.hexdigest()[:16])};", source)
    source = KEPT.sub(f"const KEPT = {json.dumps(kept)};", source)
    worker.write_text(source, encoding="utf-8")


def _loaded(site: Path, page: str) -> list[str]:
    """Site paths of this site's files that `page` loads; another host's would be a defect the tests catch."""
    parser = _Loads()
    parser.feed((site / page).read_text(encoding="utf-8"))
    paths = []
    for address in parser.addresses:
        parts = urlsplit(address)
        if parts.scheme or parts.netloc:
            continue
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page), parts.path))
        if path.startswith("../") or not (site / path).is_file():
            raise PluginError(f"{page} loads {address}, which the build did not write")
        paths.append(path)
    return paths

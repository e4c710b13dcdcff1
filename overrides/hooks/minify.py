"""Serve the site's own stylesheet and scripts minified.

Their comments say why, for whoever edits overrides/; a phone on a weak
connection should not download them on its first load (issue 23 keeps it
under 50 KB). rcssmin and rjsmin strip comments and spaces only, so what
runs is what overrides/ holds. Material's own files are minified already.
"""

from __future__ import annotations

from pathlib import Path

import rcssmin
import rjsmin
from mkdocs.plugins import event_priority

MINIFIERS = {".css": rcssmin.cssmin, ".js": rjsmin.jsmin}
ASSETS = "assets"
"""The folder of overrides/ whose stylesheets and scripts are minified (sw.js, seldom fetched, is not)."""


@event_priority(-115)  # after every language is built, before hooks/offline.py hashes what it keeps
def on_post_build(config):
    if config.plugins["i18n"].building:
        return
    custom = Path(config.theme.custom_dir)
    for source in sorted((custom / ASSETS).rglob("*")):
        minify = MINIFIERS.get(source.suffix)
        if minify:
            built = Path(config.site_dir) / source.relative_to(custom)
            built.write_text(minify(source.read_text(encoding="utf-8")), encoding="utf-8")

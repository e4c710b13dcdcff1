"""Render the forms of forms_service/fields.py into the pages that ask for them.

A page asks with a line `<!-- form: volunteer -->`. The form is rendered from
the very definition the service validates against, in the page's language,
through overrides/partials/form.html, so the page can never drift from what
the service accepts. Pages with a form also get our small script (main.html).
"""

from __future__ import annotations

import re

from mkdocs.exceptions import PluginError

from forms_service import i18n, messages
from forms_service.fields import FORMS, NO_CHOICE, Form

PLACEHOLDER = re.compile(r"<!--\s*form:\s*([\w-]+)\s*-->")
TEMPLATE = "partials/form.html"
PRIVACY_PAGE = "/privacy.html"
SCRIPT_FLAG = "form_script"
"""page.meta key main.html reads to load assets/javascripts/forms.js on this page only."""


def on_page_content(html, page, config, files):
    """Replace each form placeholder of a page by the rendered form."""
    if not PLACEHOLDER.search(html):
        return html
    plugin = config.plugins["i18n"]
    language = plugin.current_language or plugin.default_language  # as hooks/catalogues.py reads it
    environment = config.theme.get_env()
    # The theme's environment does not escape; our texts go into attributes too.
    environment.autoescape = True
    template = environment.get_template(TEMPLATE)
    page.meta[SCRIPT_FLAG] = True

    def render(match: re.Match) -> str:
        form = FORMS.get(match.group(1))
        if form is None:
            raise PluginError(f"{page.file.src_uri}: no form named {match.group(1)!r} in forms_service/fields.py")
        return template.render(**_context(form, language, page, config, files))

    return PLACEHOLDER.sub(render, html)


def _context(form: Form, language: str, page, config, files) -> dict:
    """What the template needs: the form, its texts' catalogue and the URLs around it."""
    return {
        "form": form,
        "_": i18n.catalogue(language).gettext,
        "language": language,
        "no_choice": NO_CHOICE,
        "messages": messages,
        "action": config.extra["forms_endpoint"].rstrip("/") + "/" + form.name,
        "thanks_url": _page_url(files, page, language, form.thanks_page),
        # privacy.md has one section per form, anchored #<form>-form.
        "privacy_url": f"{_page_url(files, page, language, PRIVACY_PAGE)}#{form.name}-form",
    }


def _page_url(files, page, language: str, site_path: str) -> str:
    """URL of a site page of `language`, relative to `page`; a missing page fails the build."""
    destination = (i18n.language_prefix(language) + site_path).lstrip("/")
    for file in files.documentation_pages():
        if file.dest_uri == destination:
            return file.url_relative_to(page.file)
    raise PluginError(f"{page.file.src_uri}: the form links to {destination}, which is not built")

"""Render the forms of forms_service/fields.py into the pages that ask for them,
and the privacy page's list of what each form collects.

A page asks for a form with a line `<!-- form: volunteer -->`, and the privacy
page for the table of what it collects with `<!-- collected: volunteer -->`.
Both are rendered from the very definition the service validates against, in
the page's language, through overrides/partials/form.html and collected.html,
so neither the form nor the privacy policy can drift from what the service
accepts: a field added to a form is listed, with its purpose, on the next build.
Pages with a form also get our small script (main.html).
"""

from __future__ import annotations

import re

from mkdocs.exceptions import PluginError

from forms_service import i18n
from forms_service.fields import FORMS, Form
from forms_service.form_page import PRIVACY_PAGE, TEMPLATE, form_context

PLACEHOLDER = re.compile(r"<!--\s*(form|collected):\s*([\w-]+)\s*-->")
TEMPLATES = {"form": TEMPLATE, "collected": "partials/collected.html"}
SCRIPT_FLAG = "form_script"
"""page.meta key main.html reads to load assets/javascripts/forms.js on this page only."""


def on_page_content(html, page, config, files):
    """Replace each placeholder of a page by the rendered form or table."""
    plugin = config.plugins["i18n"]
    language = plugin.current_language or plugin.default_language  # as hooks/catalogues.py reads it
    if page.file.dest_uri == _destination(language, PRIVACY_PAGE):
        _check_privacy_lists_every_form(html, page)
    if not PLACEHOLDER.search(html):
        return html
    environment = config.theme.get_env()
    # The theme's environment does not escape; our texts go into attributes too.
    environment.autoescape = True

    def render(match: re.Match) -> str:
        what, name = match.groups()
        form = FORMS.get(name)
        if form is None:
            raise PluginError(f"{page.file.src_uri}: no form named {name!r} in forms_service/fields.py")
        if what == "form":
            page.meta[SCRIPT_FLAG] = True
            context = _form_context(form, language, page, config, files)
        else:
            context = _collected_context(form, language)
        return environment.get_template(TEMPLATES[what]).render(**context)

    return PLACEHOLDER.sub(render, html)


def _check_privacy_lists_every_form(html: str, page) -> None:
    """Every form the service accepts has its section on the privacy page, where its consent links to,
    with the table of what it collects: a form cannot be added and left out of the policy."""
    listed = {name for what, name in PLACEHOLDER.findall(html) if what == "collected"}
    for name in FORMS:
        if name not in listed:
            raise PluginError(
                f"{page.file.src_uri}: the service accepts the form {name!r}, but this page does not "
                f"list what it collects: add a line <!-- collected: {name} -->"
            )
        if f'id="{name}-form"' not in html:
            raise PluginError(
                f"{page.file.src_uri}: no section anchored {{ #{name}-form }}, where the consent of "
                f"the form {name!r} links to"
            )


def _form_context(form: Form, language: str, page, config, files) -> dict:
    """What the form template needs, with the URLs around it relative to the page."""
    return form_context(
        form,
        language,
        config.extra["forms_endpoint"],
        thanks_url=_page_url(files, page, language, form.thanks_page),
        privacy_url=_page_url(files, page, language, PRIVACY_PAGE),
    )


def _collected_context(form: Form, language: str) -> dict:
    """What the privacy table needs: every field a person fills in, with its purpose."""
    return {"form": form, "_": i18n.catalogue(language).gettext}


def _page_url(files, page, language: str, site_path: str) -> str:
    """URL of a site page of `language`, relative to `page`; a missing page fails the build."""
    destination = _destination(language, site_path)
    for file in files.documentation_pages():
        if file.dest_uri == destination:
            return file.url_relative_to(page.file)
    raise PluginError(f"{page.file.src_uri}: the form links to {destination}, which is not built")


def _destination(language: str, site_path: str) -> str:
    """Where MkDocs writes a site page of `language` (File.dest_uri)."""
    return (i18n.language_prefix(language) + site_path).lstrip("/")

"""Render the forms of forms_service/fields.py into the pages that ask for them,
and the privacy page's list of what each form collects.

A page asks for a form with a line `<!-- form: volunteer -->`, and the privacy
page for the table of what it collects with `<!-- collected: volunteer -->`.
Both are rendered from the very definition the service validates against, in
the page's language, through overrides/partials/form.html and collected.html,
so neither the form nor the privacy policy can drift from what the service
accepts: a field added to a form is listed, with its purpose, on the next build.
Pages with a form also get our small script (main.html), and the text of the form's
thank-you page, which the script shows in place of the form once the service has
accepted it (so that a person told "accepted" sees it even if that page then fails
to load). That text is only known once every page is rendered: a marker holds its
place until on_post_page.
"""

from __future__ import annotations

import re

from markupsafe import Markup
from mkdocs.exceptions import PluginError

from forms_service import i18n
from forms_service.fields import FORMS
from forms_service.form_model import Form
from forms_service.form_page import PRIVACY_PAGE, TEMPLATE, form_context

PLACEHOLDER = re.compile(r"<!--\s*(form|collected):\s*([\w-]+)\s*-->")
HEADING = re.compile(r"<(/?)h([1-6])\b")
HEADING_LEVEL = re.compile(r"<h([1-6])\b")
ID = re.compile(r'\sid="[^"]*"')
TEMPLATES = {"form": TEMPLATE, "collected": "partials/collected.html"}
SCRIPT_FLAG = "form_script"
"""page.meta key main.html reads to load assets/javascripts/forms.js on this page only."""
THANKS = "form_thanks"
"""page.meta key: {marker: (thank-you page's File, level of the heading the form is under)}."""


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
            marker = f"<!-- thanks: {form.name} -->"
            level = int(([1] + HEADING_LEVEL.findall(html, 0, match.start()))[-1])
            page.meta.setdefault(THANKS, {})[marker] = (_page_file(files, page, language, form.thanks_page), level)
            context["thanks_content"] = Markup(marker)
        else:
            context = _collected_context(form, language)
        return environment.get_template(TEMPLATES[what]).render(**context)

    return PLACEHOLDER.sub(render, html)


def on_post_page(output, page, config):
    """Put each form's thank-you text where its marker holds the place: its headings under the
    form's own, and without its ids (the page has its own, "emergency" among them)."""
    for marker, (thanks, level) in page.meta.get(THANKS, {}).items():
        output = output.replace(marker, ID.sub("", _headings_under(thanks.page.content, level)))
    return output


def _headings_under(html: str, level: int) -> str:
    """`html` with each heading moved `level` levels down (h1 under an h2 becomes an h3)."""
    return HEADING.sub(lambda h: f"<{h.group(1)}h{min(int(h.group(2)) + level, 6)}", html)


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
    """URL of a site page of `language`, relative to `page`."""
    return _page_file(files, page, language, site_path).url_relative_to(page.file)


def _page_file(files, page, language: str, site_path: str):
    """The File of a site page of `language`; a missing page fails the build."""
    destination = _destination(language, site_path)
    for file in files.documentation_pages():
        if file.dest_uri == destination:
            return file
    raise PluginError(f"{page.file.src_uri}: the form links to {destination}, which is not built")


def _destination(language: str, site_path: str) -> str:
    """Where MkDocs writes a site page of `language` (File.dest_uri)."""
    return (i18n.language_prefix(language) + site_path).lstrip("/")

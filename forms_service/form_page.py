"""A form's page: what overrides/partials/form.html renders from, for the site build (overrides/hooks/forms.py)
and the service alike, so a form given back is the very form of the site; and the site's page around a form
the service gives back filled in after a refusal (README.md, "Endpoints"). That page is read from the built
site (FORMS_SITE_DIR) rather than imitated, so a refusal looks like the page the person was on, whatever the
site looks like. Only four things change: scripts go (the service's answers allow none), relative links
become absolute (it is served from /forms/<name>), the title says the form was refused, and the form is the
service's rendering.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

from . import i18n, messages
from .form_model import NO_CHOICE, Form

TEMPLATE = "partials/form.html"
PRIVACY_PAGE = "/privacy.html"
"""The privacy page: one section per form, anchored #<form>-form, where its consent links to."""

SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>\s*", re.S | re.I)
# Every address of Material's templates and ours is double-quoted; a fragment alone stays in this page.
RELATIVE = re.compile(r'(\s(?:href|src)=")(?![#"])([^"]*)"')
TITLE = re.compile(r"<title>(.*?)</title>", re.S)
# The page's own title in Material's article: the notice goes right after it.
HEADING = re.compile(r"<article\b[^>]*\bmd-content__inner\b.*?</h1>", re.S)


def form_context(
    form: Form,
    language: str,
    endpoint: str,
    thanks_url: str,
    privacy_url: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict:
    """What form.html needs: the form, its language's texts, the URLs around it, and, when the
    service gives it back, what was typed (`values`) and each field's problem (`errors`, translated)."""
    return {
        "form": form,
        "_": i18n.catalogue(language).gettext,
        "language": language,
        "no_choice": NO_CHOICE,
        "messages": messages,
        # The page's language rides in the address too: a refusal given before the body (and its
        # `lang` field) is read, such as a 429, still speaks it. Not personal: every visitor shares it.
        "action": f"{endpoint.rstrip('/')}/{form.name}?lang={language}",
        "thanks_url": thanks_url,
        "privacy_url": f"{privacy_url}#{form.name}-form",
        "values": values or {},
        "errors": errors or {},
    }


def built_page(site_dir: str | Path, form: Form, language: str) -> str | None:
    """The built HTML of the page holding `form` in `language`, or None if the site is not there."""
    path = Path(site_dir) / (i18n.language_prefix(language) + form.page).lstrip("/")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return None


def around(page: str, form: Form, page_url: str, form_html: str, title: str, notice: str) -> str | None:
    """`page` with `form_html` in place of its form, a refusal `title` and `notice`; None if
    the page holds no such form (a build from before the form existed)."""
    start = page.find(f'<form class="cch-form" id="{form.name}-form"')
    end = page.find("</form>", start)
    if start == -1 or end == -1:
        return None
    before, after = (_served_elsewhere(part, page_url) for part in (page[:start], page[end + len("</form>") :]))
    before = TITLE.sub(lambda match: f"<title>{title} – {match.group(1)}</title>", before, count=1)
    before = HEADING.sub(lambda match: match.group(0) + notice, before, count=1)
    return before + form_html + after


def _served_elsewhere(html: str, page_url: str) -> str:
    """Part of the built page, without scripts, its relative addresses made absolute to where it was built for."""
    html = SCRIPT.sub("", html)
    return RELATIVE.sub(lambda match: f'{match.group(1)}{urljoin(page_url, match.group(2))}"', html)

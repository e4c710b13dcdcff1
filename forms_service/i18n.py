"""Translations from the editable PO catalogues, and choosing the submitter's language.

Catalogues are read at run time with Babel (no compile step), so a translator edits translations/<lang>.po and
nothing else; a new language is a new file. No Flask import: the site build uses the same catalogues.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jinja2
from babel.messages.pofile import read_po
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

DEFAULT_LANGUAGE = "fr"
TRANSLATIONS = Path(__file__).with_name("translations")


@dataclass(frozen=True)
class Catalogue:
    """The messages of one language: msgid -> translated text."""

    language: str
    messages: dict[str, str]

    def gettext(self, msgid: str, **values: object) -> str:
        """Translate, falling back to the English msgid, then fill {placeholders}."""
        text = self.messages.get(msgid) or msgid
        return text.format(**values) if values else text


def _read(path: Path) -> Catalogue:
    """Parse one PO file, keeping only translated, non-fuzzy entries."""
    with path.open("rb") as handle:
        catalog = read_po(handle)
    messages = {
        message.id: message.string
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }
    return Catalogue(path.stem, messages)


@functools.cache
def catalogues(directory: Path = TRANSLATIONS) -> dict[str, Catalogue]:
    """Every catalogue present, by language code; read once per process."""
    return {path.stem: _read(path) for path in sorted(directory.glob("*.po"))}


def supported_languages() -> tuple[str, ...]:
    """Languages offered: exactly those with a catalogue."""
    return tuple(catalogues())


def catalogue(language: str) -> Catalogue:
    """The catalogue of a supported language (the default one for anything else)."""
    available = catalogues()
    return available.get(language) or available[DEFAULT_LANGUAGE]


def negotiate(requested: tuple[str | None, ...], accept_language: str | None) -> str:
    """The language to answer in: the first supported of the page's own (`requested`, best first),
    else Accept-Language, else French."""
    supported = supported_languages()
    for code in requested:
        if code and code.strip().lower() in supported:
            return code.strip().lower()
    accepted = parse_accept_header(accept_language or "", LanguageAccept)
    # Default first: among equally good matches ("*", or no preference) French wins.
    preference = (DEFAULT_LANGUAGE, *(code for code in supported if code != DEFAULT_LANGUAGE))
    return accepted.best_match(preference, default=DEFAULT_LANGUAGE)


def language_prefix(language: str) -> str:
    """URL prefix of a language on the site: '' for French at the root, '/en' etc."""
    return "" if language == DEFAULT_LANGUAGE else f"/{language}"


@jinja2.pass_context
def _template_gettext(context: jinja2.runtime.Context, msgid: str) -> str:
    """gettext for templates: uses the `catalogue` variable of the render call."""
    return context["catalogue"].gettext(msgid)


@jinja2.pass_context
def _template_ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
    """Plural forms are not used in our texts; keep the jinja i18n contract anyway."""
    return context["catalogue"].gettext(singular if count == 1 else plural)


def install(environment: jinja2.Environment) -> None:
    """Enable {% trans %} and _() in templates, translated by the `catalogue` passed to render (not a global,
    so concurrent requests in different languages stay independent)."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(_template_gettext, _template_ngettext, newstyle=True)

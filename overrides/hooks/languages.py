"""Make each language a complete site of its own.

mkdocs-static-i18n builds one language after the other into one folder, which
leaves gaps this hook fills: hreflang links that are relative, a single 404
page in the last language built, one search index mixing every language, and
no sitemap under a language folder (Material fetches one there, and a missing
file is an error in the browser console).
"""

from __future__ import annotations

import gzip
import json
import posixpath
from pathlib import Path
from xml.etree import ElementTree

from mkdocs.plugins import event_priority

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XHTML_NS = "http://www.w3.org/1999/xhtml"

# 404 pages rendered by each language build, written once all builds are done.
_not_found_pages: dict[str, str] = {}


def _i18n(config):
    return config.plugins["i18n"]


def _absolute(config, url: str) -> str:
    """An absolute URL from site_url; a folder's index page is named by its folder."""
    if posixpath.basename(url) == "index.html":
        url = url[: -len("index.html")]
    return config.site_url + url


def _alternates(config, file) -> dict[str, str]:
    """Absolute URL of this page in every language that has it."""
    return {lang: _absolute(config, twin.url) for lang, twin in file.alternates.items()}


@event_priority(-110)  # after mkdocs-static-i18n has switched the language
def on_config(config):
    """Tell the templates which folder the language being built lives in."""
    i18n = _i18n(config)
    config.extra["language_folder"] = _prefix(i18n, i18n.current_language or i18n.default_language)
    return config


def on_page_context(context, page, config, nav):
    """Absolute hreflang links, the x-default and Open Graph locales for one page."""
    i18n = _i18n(config)
    alternates = _alternates(config, page.file)
    for alternate in config.extra.alternate:
        alternate["link"] = alternates.get(alternate["lang"], _absolute(config, alternate["link"].lstrip("/")))
    context["page_url"] = alternates[i18n.current_language]
    context["x_default_url"] = alternates.get(i18n.default_language)
    context["og_locales"] = {
        lang.locale: (lang.extra or {}).get("og_locale", lang.locale) for lang in i18n.config.languages
    }
    return context


def on_template_context(context, template_name, config):
    """The 404 page has no twin: its hreflang links name each language's home."""
    if template_name == "404.html":
        i18n = _i18n(config)
        homes = {alt["lang"]: _absolute(config, alt["link"].lstrip("/")) for alt in i18n.extra_alternate}
        config.extra.alternate = [dict(alt, link=homes[alt["lang"]]) for alt in i18n.extra_alternate]
        context["x_default_url"] = homes.get(i18n.default_language)
    return context


def on_post_template(output, template_name, config):
    """Keep each language's 404 page; the next language build would overwrite it."""
    if template_name == "404.html":
        _not_found_pages[_i18n(config).current_language] = output
    return output


@event_priority(-110)  # after mkdocs-static-i18n has built every language
def on_post_build(config):
    i18n = _i18n(config)
    if i18n.building:
        return
    site = Path(config.site_dir)
    languages = i18n.build_languages
    for lang in languages:
        folder = site / _prefix(i18n, lang)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "404.html").write_text(_not_found_pages[lang], encoding="utf-8")
        _write_sitemap(folder, config, i18n, [lang] if lang != i18n.default_language else languages)
    _split_search_index(site, i18n)
    (site / "robots.txt").write_text(
        f"User-agent: *\nAllow: /\n\nSitemap: {config.site_url}sitemap.xml\n", encoding="utf-8"
    )


def _prefix(i18n, lang: str) -> str:
    return "" if lang == i18n.default_language else f"{lang}/"


def _write_sitemap(folder: Path, config, i18n, languages: list[str]) -> None:
    """A sitemap of these languages' pages, each with its alternates and x-default.

    The root sitemap lists every language; one under a language folder may
    only list that folder's pages (sitemaps protocol), so it lists its own.
    """
    ElementTree.register_namespace("", SITEMAP_NS)
    ElementTree.register_namespace("xhtml", XHTML_NS)
    urlset = ElementTree.Element(f"{{{SITEMAP_NS}}}urlset")
    for lang in languages:
        for file in i18n.i18n_files_per_language[lang]:
            if file.page is None or file.inclusion.is_not_in_nav():
                continue
            alternates = _alternates(config, file)
            url = ElementTree.SubElement(urlset, f"{{{SITEMAP_NS}}}url")
            ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = alternates[lang]
            links = dict(alternates, **{"x-default": alternates.get(i18n.default_language)})
            for hreflang, href in links.items():
                if href:
                    ElementTree.SubElement(url, f"{{{XHTML_NS}}}link", rel="alternate", hreflang=hreflang, href=href)
    data = ElementTree.tostring(urlset, encoding="utf-8", xml_declaration=True)
    (folder / "sitemap.xml").write_bytes(data)
    (folder / "sitemap.xml.gz").write_bytes(gzip.compress(data, mtime=0))


def _split_search_index(site: Path, i18n) -> None:
    """One search index per language, beside that language's pages.

    Material loads the index from the page's base folder, so an English page
    reads en/search/search_index.json and finds English pages only.
    """
    merged = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    others = tuple(_prefix(i18n, lang) for lang in i18n.build_languages if lang != i18n.default_language)
    for lang in i18n.build_languages:
        prefix = _prefix(i18n, lang)
        if prefix:
            docs = [
                dict(d, location=d["location"][len(prefix) :])
                for d in merged["docs"]
                if d["location"].startswith(prefix)
            ]
        else:
            docs = [d for d in merged["docs"] if not d["location"].startswith(others)]
        index = {"config": dict(merged["config"], lang=[lang]), "docs": docs}
        target = site / prefix / "search" / "search_index.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

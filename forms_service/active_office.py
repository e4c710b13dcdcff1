"""Finding what in a DOCX or ODT package fetches, embeds or runs something once opened (what is refused, in
full: README.md, "Endpoints").

Why each: a linked template can bring macros in after every check here, and a UNC path (\\\\host\\share)
sends the reader's Windows credentials hash and tells the sender the file was opened; OLE objects, packages,
ActiveX controls and imported chunks (altChunk) are programs or files of their own; ODF event listeners and
scripts run macros; Word's fields INCLUDEPICTURE, INCLUDETEXT and IMPORT load a file, LINK, DDE and DDEAUTO
another program's data (DDEAUTO runs a command, after a prompt people click through). Links wait for a click
and stay, since Word makes one of every address typed in a CV.

A DOCX relationship's declared type promises nothing about its use: a "hyperlink" to https can be named by
the attached template or by an image loaded on opening. So one leaving the package is accepted only as a
hyperlink to a clickable scheme that nothing but a hyperlink (w:hyperlink, a:hlinkClick) names in its part.
A field's code names its kind first, however Word splits it over runs; a code starting with another field,
which could write that name, is not trusted. Each part Word could read as WordprocessingML (named .xml, or
declared so in [Content_Types].xml) is read once, for its fields and links together.

XML parts are read with expat, in bounded chunks, their elements and depth spent from the upload's budget
(budget.py); a DTD is refused (office suites never write one: no entities to expand or fetch).
"""

from __future__ import annotations

import functools
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import unquote, urlsplit
from xml.parsers import expat

from .budget import MAX_ELEMENTS_PER_PART, MAX_XML_DEPTH, Budget, OverBudget

READ_CHUNK = 64 * 1024
ELEMENTS_PER_SPEND = 256  # elements read between two spends (each looks at the clock)
# A link's target: only these schemes, with a host for the web, and no control characters anywhere.
CLICKABLE = re.compile(r"(?:https?://[^/\\\s]|mailto:|tel:)[^\x00-\x1f\x7f]*\Z", re.IGNORECASE)

# Office Open XML: relationship types end with a name; strict and transitional URIs differ before it.
ACTIVE_RELATIONSHIPS = frozenset(  # afchunk: altChunk, a file (RTF, HTML, DOCX) Word imports when opening
    "oleobject package control activexcontrol activexcontrolbinary afchunk vbaproject wordvbadata".split()
)
ACTIVE_CONTENT_TYPES = ("oleobject", "activex", "vbaproject", "macroenabled")
ACTIVE_PARTS = ("word/embeddings/", "word/activex/")
RELATIONSHIP = "http://schemas.openxmlformats.org/package/2006/relationships Relationship"
HYPERLINKS = frozenset({"hyperlink", "hlinkClick"})  # local names: w:hyperlink, DrawingML's a:hlinkClick
INSTRUCTIONS = frozenset({"instrText", "delInstrText"})  # local names: a field code's text, kept or deleted
# A field code naming a kind that loads or runs something (INCLUDEPICTURE, INCLUDETEXT, DDEAUTO...); no
# other field's name starts so, so the start of a code split over runs decides it as soon as it is read.
FETCHING_FIELD = re.compile(r"\s*(?:INCLUDE|IMPORT|LINK|DDE)", re.IGNORECASE)
OUTSIDE = re.compile(r"\s*(?:[a-z][a-z0-9+.-]*:|[/\\]{2})", re.IGNORECASE)  # a target naming a scheme or a host
RELS = re.compile(r"((?:.*/)?)_rels/([^/]*)\.rels")

# OpenDocument, by namespace URI (prefixes are the author's choice).
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0 "
SCRIPT = "urn:oasis:names:tc:opendocument:xmlns:script:1.0 "
PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0 "
XLINK_HREF = "http://www.w3.org/1999/xlink href"
ODF_SCRIPTS = frozenset({SCRIPT + "event-listener", PRESENTATION + "event-listener", OFFICE + "script"})
ODF_LINKS = frozenset(
    {"urn:oasis:names:tc:opendocument:xmlns:text:1.0 a", "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0 a"}
)
FIELD = "urn:openoffice:names:experimental:ooo-ms-interop:xmlns:field:1.0 "  # LibreOffice's fieldmarks


class NoDTD(expat.ExpatError):
    """An XML part declared a DTD; office suites never write one, so the package is damaged."""


def docx_acts(archive: zipfile.ZipFile, names: set[str], budget: Budget) -> bool:
    """True if the Word package fetches, embeds or runs anything on opening (see the module)."""
    if any(name.lower().startswith(ACTIVE_PARTS) for name in names):
        return True
    word: set[str] = set()  # part names and ".extension"s declared WordprocessingML, lower case
    if _any_start_tag(archive, "[Content_Types].xml", budget, functools.partial(_content_type_acts, word)):
        return True
    # Part (lower case, as OPC compares names) -> ids of its links, without case or spaces: no spelling escapes.
    links: defaultdict[str, set[str]] = defaultdict(set)
    for rels in sorted(name for name in names if name.lower().endswith(".rels")):
        if _any_start_tag(archive, rels, budget, functools.partial(_relationship_acts, links[_source(rels)])):
            return True
    return any(
        _any_start_tag(
            archive, name, budget, functools.partial(_names_other_than_a_link, links[name.lower()]), _FieldCodes()
        )
        for name in sorted(names)
        if links.get(name.lower()) or _is_wordprocessing(name, word)
    )


def _content_type_acts(word: set[str], _tag: str, attributes: dict[str, str]) -> bool:
    """An active content type; a WordprocessingML one's part (or extension) joins `word`."""
    kind = attributes.get("ContentType", "").lower()
    if "wordprocessingml" in kind:
        part = unquote(attributes.get("PartName", "")).lstrip("/") or "." + attributes.get("Extension", "")
        word.add(part.lower())
    return any(marker in kind for marker in ACTIVE_CONTENT_TYPES)


def _is_wordprocessing(name: str, word: set[str]) -> bool:
    """Could Word read part `name` as WordprocessingML: is it named .xml, or declared so?"""
    name = unquote(name).lower()
    extension = "." + name.rpartition(".")[2]
    return name != "[content_types].xml" and (extension == ".xml" or bool({name, extension} & word))


def _relationship_acts(links: set[str], tag: str, attributes: dict[str, str]) -> bool:
    """An active relationship, or one outside the package that is not a link; a link's id joins `links`."""
    if tag != RELATIONSHIP:
        return False
    kind, target = attributes.get("Type", "").rstrip("/").rsplit("/", 1)[-1].lower(), attributes.get("Target", "")
    if attributes.get("TargetMode", "").strip().lower() == "external" or OUTSIDE.match(target):
        if kind != "hyperlink" or not CLICKABLE.match(target):
            return True
        links.add(attributes.get("Id", "").strip().lower())
    return kind in ACTIVE_RELATIONSHIPS


def _source(rels: str) -> str:
    """The part whose relationships `rels` holds (word/_rels/document.xml.rels: word/document.xml), or ""."""
    found = RELS.fullmatch(rels.lower())
    return found[1] + found[2] if found else ""


def _names_other_than_a_link(ids: set[str], tag: str, attributes: dict[str, str]) -> bool:
    """Does anything but a hyperlink's r:id name one of the link relationships `ids`?"""
    return bool(ids) and any(
        value.strip().lower() in ids
        and not (tag.rsplit(" ", 1)[-1] in HYPERLINKS and attribute.rsplit(" ", 1)[-1] == "id")
        for attribute, value in attributes.items()
    )


def odt_acts(archive: zipfile.ZipFile, names: set[str], budget: Budget) -> bool:
    """True if any XML part of the ODF package has scripts, event listeners, DDE links, a Word field code
    that loads or runs something, or an outside reference other than a link to the web, mail or phone.

    Every part is read, not only content.xml and styles.xml: an embedded
    object ("Object 1/content.xml") is loaded with the document too.
    """
    return any(
        _any_start_tag(archive, name, budget, _odf_acts) for name in sorted(names) if name.lower().endswith(".xml")
    )


def _odf_acts(tag: str, attributes: dict[str, str]) -> bool:
    href = attributes.get(XLINK_HREF)
    return (
        tag in ODF_SCRIPTS
        or tag.rsplit(" ", 1)[-1].startswith("dde-")
        or (
            tag == FIELD + "param"
            and attributes.get(FIELD + "name", "").endswith(".field.code")
            and bool(FETCHING_FIELD.match(attributes.get(FIELD + "value", "")))
        )
        or (bool(href) and not (_inside_package(href) or tag in ODF_LINKS and CLICKABLE.match(href)))
    )


class _FieldCodes:
    """Word's field codes in one part, told what expat reads: does one load or run something (see the module)?"""

    def __init__(self) -> None:
        self.codes: list[str] = []  # the start of each open field's code, the innermost last
        self.in_code = False

    def start(self, tag: str, attributes: dict[str, str]) -> bool:
        local = tag.rsplit(" ", 1)[-1]
        if local == "fldChar" and _attribute(attributes, "fldCharType") == "begin":
            if self.codes and not self.codes[-1]:
                return True  # a field whose code starts with another field, which could write its kind
            self.codes.append("")
        elif local == "fldChar" and _attribute(attributes, "fldCharType") == "end" and self.codes:
            self.codes.pop()
        self.in_code = self.in_code or local in INSTRUCTIONS
        return local == "fldSimple" and bool(FETCHING_FIELD.match(_attribute(attributes, "instr")))

    def end(self, tag: str) -> None:
        self.in_code = self.in_code and tag.rsplit(" ", 1)[-1] not in INSTRUCTIONS

    def text(self, data: str) -> bool:
        if not self.in_code:
            return False
        if not self.codes:
            self.codes.append("")  # a code outside any field: judged all the same
        self.codes[-1] = (self.codes[-1] + data).lstrip()[:16]
        return bool(FETCHING_FIELD.match(self.codes[-1]))


def _attribute(attributes: dict[str, str], local: str) -> str:
    """The value of the attribute named `local` in any namespace (transitional or strict OOXML), or ""."""
    return next((value for name, value in attributes.items() if name.rsplit(" ", 1)[-1] == local), "")


def _inside_package(href: str) -> bool:
    """True for a reference resolved inside the package: a relative path ("Pictures/a.png",
    "./Object 1") or a place in the document itself ("#Experience", how LibreOffice links a heading).

    Anything else leaves it: a scheme, a host (//host/share), an absolute,
    Windows or UNC path, "../" past the root (ODF resolves against the
    package, so above its root is the folder holding the document), checked
    once percent escapes are decoded, as a suite would; a reference that
    cannot be parsed is not trusted.
    """
    try:
        parts = urlsplit(href.strip())
    except ValueError:
        return False
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or parts.query or path.startswith("/") or any(c in path for c in "\\:"):
        return False
    depth = 0
    for segment in path.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return False
        elif segment not in ("", "."):
            depth += 1
    return True


def _any_start_tag(
    archive: zipfile.ZipFile,
    name: str,
    budget: Budget,
    test: Callable[[str, dict[str, str]], bool],
    fields: _FieldCodes | None = None,
) -> bool:
    """True if `test` holds for a start tag ("namespace-uri local-name", attributes) of XML part `name`,
    or a field code of `fields` loads or runs something, read in bounded chunks until found, its
    elements and depth spent from the budget (OverBudget past it).

    An empty part has no tags (LibreOffice writes an empty accelerator/current.xml). Raises
    expat.ExpatError on bad XML or a DTD.
    """
    counts = [0, 0]  # elements read, elements open

    def start(tag: str, attributes: dict[str, str]) -> None:
        counts[0] += 1
        counts[1] += 1
        if counts[0] % ELEMENTS_PER_SPEND == 0:
            budget.spend("elements", ELEMENTS_PER_SPEND)
        if counts[0] > MAX_ELEMENTS_PER_PART or counts[1] > MAX_XML_DEPTH:
            raise OverBudget(name)
        if test(tag, attributes) or fields and fields.start(tag, attributes):
            raise _Found

    def end(tag: str) -> None:
        counts[1] -= 1
        if fields:
            fields.end(tag)

    def text(data: str) -> None:
        if fields.text(data):
            raise _Found

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if fields:
        parser.buffer_text = True  # one call per run of text, not per line or character reference
        parser.CharacterDataHandler = text
    empty = True
    try:
        with archive.open(name) as part:
            while chunk := part.read(READ_CHUNK):
                budget.spend("inflated", len(chunk))
                empty = False
                parser.Parse(chunk, False)
        if not empty:
            parser.Parse(b"", True)
    except _Found:
        return True
    return False


class _Found(Exception):
    """What a test looked for is in the part: reading it stops there."""


def _refuse_dtd(*_declaration) -> None:
    raise NoDTD("DTD in an office part")

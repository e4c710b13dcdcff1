"""Finding what in a DOCX or ODT package acts on its own once opened.

A word processor fetches a linked template or image as soon as it opens a
document: a template can bring macros in after every check here, and a UNC
path (\\\\host\\share) makes Windows send the reader's credentials hash and
tells the sender when the file was opened. Embedded OLE objects, packages
and ActiveX controls are programs in their own right; ODF event listeners
and scripts run macros. All of these are refused.

Hyperlinks to web pages, email addresses and phone numbers stay: they do nothing until
clicked, and Word and LibreOffice turn every typed address into one, so
refusing them would refuse most resumés.

XML parts are read with expat directly, in bounded chunks, and any DTD is
refused: office suites never write one, and without a DTD there are no
entities to expand (billion laughs) or to fetch.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from urllib.parse import urlsplit
from xml.parsers import expat

READ_CHUNK = 64 * 1024
CLICKABLE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})

# Office Open XML: relationship types end with a name; strict and transitional URIs differ before it.
ACTIVE_RELATIONSHIPS = frozenset({
    "oleobject", "package", "control", "activexcontrol", "activexcontrolbinary",
    "afchunk",  # altChunk: a whole file (RTF, HTML, another DOCX) Word imports when opening
    "vbaproject", "wordvbadata",
})
ACTIVE_CONTENT_TYPES = ("oleobject", "activex", "vbaproject", "macroenabled")
ACTIVE_PARTS = ("word/embeddings/", "word/activex/")
RELATIONSHIP = "http://schemas.openxmlformats.org/package/2006/relationships Relationship"
# Attributes naming a relationship (r:id, r:link, r:embed...), transitional and strict namespaces.
RELATIONSHIP_REFERENCE = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships ",
                          "http://purl.oclc.org/ooxml/officeDocument/relationships ")
HYPERLINK_ELEMENTS = frozenset({"hyperlink", "hlinkClick", "hlinkHover", "hlinkMouseOver"})

# OpenDocument, by namespace URI (prefixes are the author's choice).
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0 "
SCRIPT = "urn:oasis:names:tc:opendocument:xmlns:script:1.0 "
PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0 "
XLINK_HREF = "http://www.w3.org/1999/xlink href"
ODF_SCRIPTS = frozenset({SCRIPT + "event-listener", PRESENTATION + "event-listener", OFFICE + "script"})
ODF_HYPERLINKS = frozenset({"urn:oasis:names:tc:opendocument:xmlns:text:1.0 a",
                            "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0 a"})


class NoDTD(expat.ExpatError):
    """An XML part declared a DTD; office suites never write one, so the package is damaged."""


def docx_acts(archive: zipfile.ZipFile, names: set[str]) -> bool:
    """True if the Word package links outside itself, embeds objects or controls, or carries VBA."""
    if any(name.lower().startswith(ACTIVE_PARTS) for name in names):
        return True
    for _tag, attributes in _start_tags(archive, "[Content_Types].xml"):
        if any(marker in attributes.get("ContentType", "").lower() for marker in ACTIVE_CONTENT_TYPES):
            return True
    for rels in sorted(name for name in names if name.lower().endswith(".rels")):
        links: set[str] = set()
        for tag, attributes in _start_tags(archive, rels):
            if tag != RELATIONSHIP:
                continue
            if _relationship_acts(attributes):
                return True
            if _external(attributes):
                links.add(attributes.get("Id", ""))
        source = _source_part(rels)
        if links and source in names and _used_beyond_hyperlinks(archive, source, links):
            return True
    return False


def _relationship_acts(attributes: dict[str, str]) -> bool:
    """An active relationship type, or any outside target but a web or mail hyperlink."""
    kind = attributes.get("Type", "").rstrip("/").rsplit("/", 1)[-1].lower()
    if kind in ACTIVE_RELATIONSHIPS:
        return True
    return _external(attributes) and not (kind == "hyperlink" and _clickable(attributes.get("Target", "")))


def _external(attributes: dict[str, str]) -> bool:
    return attributes.get("TargetMode", "").strip().lower() == "external"


def _source_part(rels: str) -> str:
    """The part a relationships part belongs to: word/_rels/document.xml.rels -> word/document.xml."""
    folder, _, file_name = rels.rpartition("/")
    return posixpath.join(posixpath.dirname(folder), file_name.removesuffix(".rels"))


def _used_beyond_hyperlinks(archive: zipfile.ZipFile, source: str, links: set[str]) -> bool:
    """True if the part refers to an outside web link from anything but a hyperlink.

    Nothing promises that Word checks a relationship's type when it resolves
    an r:id, so a "hyperlink" to a web address named by w:attachedTemplate or
    an image's r:link is treated as what would be fetched on opening.
    """
    return any(
        tag.rpartition(" ")[2] not in HYPERLINK_ELEMENTS
        for tag, attributes in _start_tags(archive, source)
        for attribute, value in attributes.items()
        if attribute.startswith(RELATIONSHIP_REFERENCE) and value in links
    )


def odt_acts(archive: zipfile.ZipFile, names: set[str]) -> bool:
    """True if any XML part of the ODF package has scripts, event listeners or an outside reference.

    Every part is read, not only content.xml and styles.xml: an embedded
    object ("Object 1/content.xml") is loaded with the document too.
    """
    return any(
        _odf_element_acts(tag, attributes)
        for name in sorted(names) if name.lower().endswith(".xml")
        for tag, attributes in _start_tags(archive, name)
    )


def _odf_element_acts(tag: str, attributes: dict[str, str]) -> bool:
    """A script or listener, or an xlink:href leaving the package (but a clickable web or mail link)."""
    if tag in ODF_SCRIPTS:
        return True
    href = attributes.get(XLINK_HREF)
    if href is None or _inside_package(href):
        return False
    return not (tag in ODF_HYPERLINKS and _clickable(href))


def _clickable(target: str) -> bool:
    """A web page, an email address or a phone number: what a hyperlink in a resumé honestly points to."""
    return "\\" not in target and urlsplit(target.strip()).scheme.lower() in CLICKABLE_SCHEMES


def _inside_package(href: str) -> bool:
    """A reference resolved inside the package ("Pictures/a.png", "./Object 1", "#bookmark").

    ODF resolves relative references against the package, so "../" climbs out of it.
    """
    href = href.strip()
    if "\\" in href:
        return False  # UNC (\\host\share) or a Windows path
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("/"):
        return False
    depth = 0
    for segment in parts.path.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return False
        elif segment not in ("", "."):
            depth += 1
    return True


def _start_tags(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Start tags of one XML part ("namespace-uri local-name", attributes), read in bounded chunks.

    The caller has already inflated every part under the package caps, so
    reading a part again is bounded too. An empty part has no tags (LibreOffice
    writes an empty Configurations2/accelerator/current.xml). Raises
    expat.ExpatError on bad XML or a DTD.
    """
    found: list[tuple[str, dict[str, str]]] = []
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.StartElementHandler = lambda tag, attributes: found.append((tag, attributes))
    empty = True
    with archive.open(name) as part:
        while chunk := part.read(READ_CHUNK):
            empty = False
            parser.Parse(chunk, False)
            yield from found
            found.clear()
    if not empty:
        parser.Parse(b"", True)
        yield from found


def _refuse_dtd(*_declaration) -> None:
    raise NoDTD("DTD in an office part")

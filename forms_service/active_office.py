"""Finding what in a DOCX or ODT package acts on its own once opened.

A word processor fetches a linked template or image as soon as it opens a
document: a template can bring macros in after every check here, and a UNC
path (\\\\host\\share) makes Windows send the reader's credentials hash and
tells the sender when the file was opened. Embedded OLE objects, packages
and ActiveX controls are programs in their own right; ODF event listeners
and scripts run macros. All of these are refused.

Links are refused too, whatever they point to (issue 12): a DOCX names every
target outside its package by a relationship with TargetMode="External", and
nothing promises that Word checks a relationship's type or the element using
it before resolving it (a "hyperlink" to https can be named as the attached
template), so telling a link that waits for a click from one fetched on
opening would mean trusting the sender's package. An ODT's outside references
are xlink:href values, refused the same way. The submitter is asked for a PDF,
whose checks (active_pdf.py) can tell a link from an action.

XML parts are read with expat directly, in bounded chunks, and any DTD is
refused: office suites never write one, and without a DTD there are no
entities to expand (billion laughs) or to fetch.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit
from xml.parsers import expat

READ_CHUNK = 64 * 1024

# Office Open XML: relationship types end with a name; strict and transitional URIs differ before it.
ACTIVE_RELATIONSHIPS = frozenset(
    {
        "oleobject",
        "package",
        "control",
        "activexcontrol",
        "activexcontrolbinary",
        "afchunk",  # altChunk: a whole file (RTF, HTML, another DOCX) Word imports when opening
        "vbaproject",
        "wordvbadata",
    }
)
ACTIVE_CONTENT_TYPES = ("oleobject", "activex", "vbaproject", "macroenabled")
ACTIVE_PARTS = ("word/embeddings/", "word/activex/")
RELATIONSHIP = "http://schemas.openxmlformats.org/package/2006/relationships Relationship"

# OpenDocument, by namespace URI (prefixes are the author's choice).
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0 "
SCRIPT = "urn:oasis:names:tc:opendocument:xmlns:script:1.0 "
PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0 "
XLINK_HREF = "http://www.w3.org/1999/xlink href"
ODF_SCRIPTS = frozenset({SCRIPT + "event-listener", PRESENTATION + "event-listener", OFFICE + "script"})


class NoDTD(expat.ExpatError):
    """An XML part declared a DTD; office suites never write one, so the package is damaged."""


def docx_acts(archive: zipfile.ZipFile, names: set[str]) -> bool:
    """True if the Word package has any outside relationship, embeds objects or controls, or carries VBA."""
    if any(name.lower().startswith(ACTIVE_PARTS) for name in names):
        return True
    for _tag, attributes in _start_tags(archive, "[Content_Types].xml"):
        if any(marker in attributes.get("ContentType", "").lower() for marker in ACTIVE_CONTENT_TYPES):
            return True
    return any(
        tag == RELATIONSHIP and _relationship_acts(attributes)
        for rels in sorted(name for name in names if name.lower().endswith(".rels"))
        for tag, attributes in _start_tags(archive, rels)
    )


def _relationship_acts(attributes: dict[str, str]) -> bool:
    """An active relationship type, or any target outside the package (a hyperlink's too: see the module)."""
    kind = attributes.get("Type", "").rstrip("/").rsplit("/", 1)[-1].lower()
    return kind in ACTIVE_RELATIONSHIPS or attributes.get("TargetMode", "").strip().lower() == "external"


def odt_acts(archive: zipfile.ZipFile, names: set[str]) -> bool:
    """True if any XML part of the ODF package has scripts, event listeners or an outside reference.

    Every part is read, not only content.xml and styles.xml: an embedded
    object ("Object 1/content.xml") is loaded with the document too.
    """
    return any(
        tag in ODF_SCRIPTS or not _inside_package(attributes.get(XLINK_HREF, ""))
        for name in sorted(names)
        if name.lower().endswith(".xml")
        for tag, attributes in _start_tags(archive, name)
    )


def _inside_package(href: str) -> bool:
    """True for a reference resolved inside the package: a relative path ("Pictures/a.png",
    "./Object 1") or a place in the document itself ("#Experience", "").

    A bare fragment names a bookmark or heading of the document being read:
    following it opens and fetches nothing, and it is how LibreOffice writes a
    link to a heading (a table of contents is made of them). Anything else
    leaves the package: a scheme (https:, mailto:, file:, vnd.sun.star.script:),
    a host (//host/share), an absolute, Windows or UNC path, and "../" past the
    root (ODF resolves relative references against the package, so one level
    above its root is the folder holding the document). The path is checked
    once percent escapes are decoded, as a suite that decodes them would read
    it; a reference that cannot even be parsed is not trusted.
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

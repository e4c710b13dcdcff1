"""Real documents built by hand, good and hostile, for upload tests.

Each generator returns bytes in the real on-disk structure (a PDF with a
valid cross-reference table; DOCX and ODT as the ZIP packages Word and
LibreOffice write), so tests exercise the service's real content checks.
"""

from __future__ import annotations

import io
import struct
import zipfile

DOCX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_CONTENT_TYPE = "application/vnd.ms-word.document.macroEnabled.main+xml"
ODT_MIMETYPE = "application/vnd.oasis.opendocument.text"


def pdf_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal, valid one-page PDF 1.4 showing `text` (ASCII), with exact xref offsets."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def padded_pdf(size: int) -> bytes:
    """A valid PDF grown to exactly `size` bytes with a trailing comment (for size limits)."""
    pdf = pdf_bytes()
    return pdf + b"%" + b"x" * (size - len(pdf) - 2) + b"\n"


def _zip(entries: list[tuple[str, bytes]], *, stored_first: bool = False) -> bytes:
    """ZIP package from (name, bytes) pairs, deflated except an optional stored first entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (name, data) in enumerate(entries):
            method = zipfile.ZIP_STORED if stored_first and index == 0 else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=method)
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


def _document_xml(text: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    ).encode()


def docx_entries(text: str = "Curriculum vitae", main_type: str = DOCX_CONTENT_TYPE) -> list[tuple[str, bytes]]:
    """The parts of a minimal Word document, for variants that add or change parts."""
    return [
        ("[Content_Types].xml", _content_types(main_type)),
        ("_rels/.rels", _RELS),
        ("word/document.xml", _document_xml(text)),
    ]


def docx_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal valid DOCX (Office Open XML word-processing package)."""
    return _zip(docx_entries(text))


def docm_bytes() -> bytes:
    """A macro-enabled Word document: macro content type and a vbaProject.bin part."""
    entries = docx_entries(main_type=DOCM_CONTENT_TYPE)
    entries.append(("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512))
    return _zip(entries)


def docx_with_hidden_vba() -> bytes:
    """A DOCX that claims the plain content type but still carries a VBA project."""
    return _zip([*docx_entries(), ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\0" * 64)])


def odt_entries(text: str = "Curriculum vitae", manifest_extra: str = "") -> list[tuple[str, bytes]]:
    """The parts of a minimal ODF text document, `mimetype` first as the spec requires."""
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
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f"<office:body><office:text><text:p>{text}</text:p></office:text></office:body>"
        "</office:document-content>"
    ).encode()
    return [
        ("mimetype", ODT_MIMETYPE.encode()),
        ("META-INF/manifest.xml", manifest),
        ("content.xml", content),
    ]


def odt_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal valid ODT (OpenDocument text)."""
    return _zip(odt_entries(text), stored_first=True)


def odt_with_macros() -> bytes:
    """An ODT carrying a LibreOffice Basic module (macro)."""
    extra = '<manifest:file-entry manifest:full-path="Basic/Standard/Module1.xml" manifest:media-type="text/xml"/>'
    entries = [*odt_entries(manifest_extra=extra), ("Basic/Standard/Module1.xml", b"<script:module/>")]
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

"""CVs made by a real word processor: LibreOffice Writer, headless (Debian: libreoffice-writer-nogui).

    .venv/bin/python -m harness.word_processor [name ...]     # rewrites tests/fixtures/cvs/ (or those files)

A flat OpenDocument source is written, then exported as LibreOffice exports what people send:

- cv.odt, cv.docx, cv.pdf: a CV of about 30 pages with a photo, tables, bulleted lists, headings, a link
  to one of its own headings and web, mail and phone links (the PDF tagged, as accessible exports are);
- link-https.docx, link-mailto.docx, link-https.odt: one paragraph holding one link each;
- field-includetext.docx, field-link.docx, field-dde.docx, field-ddeauto.docx: a paragraph holding a Word
  field that loads or runs something, as LibreOffice writes it back from a DOCX (it drops INCLUDEPICTURE),
  and field-ddeauto.odt, where LibreOffice keeps the code to write it back; dde.odt and dde-section.odt: a
  DDE field and a section fed by DDE (all refused: they fetch or run on opening).

The content is deterministic, the bytes are not (exports carry dates). CI does not need LibreOffice: the
files are committed (about 500 KB in all) and the tests read them. The benchmark uses `export` itself,
when `soffice` is there, for a 5 MB PDF with photos (`large_pdf`).
"""

from __future__ import annotations

import base64
import functools
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

from harness import samples

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cvs"
PAGES = 30
PHOTOS = 10
FIELDS = {  # Word fields that load or run something, as a CV might hold them
    "includetext": r'INCLUDETEXT "C:\\CV\\experience.docx"',
    "link": r'LINK Excel.Sheet.12 "C:\\CV\\languages.xlsx" "Sheet1!R1C1" \a \t',
    "dde": r'DDE Excel "C:\\CV\\languages.xlsx" "R1C1"',
    "ddeauto": r'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"',
}
DDE = 'office:dde-application="soffice" office:dde-topic="file:///tmp/rates.ods" office:dde-item="Sheet1.A1"'
LINKS = (
    ("https://www.linkedin.com/in/amina-example", "linkedin.com/in/amina-example"),
    ("mailto:amina@example.org", "amina@example.org"),
    ("tel:+41221234567", "+41 22 123 45 67"),
)
TAGGED_PDF = 'pdf:writer_pdf_Export:{"UseTaggedPDF":{"type":"boolean","value":"true"}}'
NAMESPACES = " ".join(
    f'xmlns:{prefix}="{uri}"'
    for prefix, uri in (
        ("office", "urn:oasis:names:tc:opendocument:xmlns:office:1.0"),
        ("style", "urn:oasis:names:tc:opendocument:xmlns:style:1.0"),
        ("text", "urn:oasis:names:tc:opendocument:xmlns:text:1.0"),
        ("table", "urn:oasis:names:tc:opendocument:xmlns:table:1.0"),
        ("draw", "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"),
        ("fo", "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"),
        ("svg", "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"),
        ("xlink", "http://www.w3.org/1999/xlink"),
    )
)
STYLES = (
    '<style:style style:name="Body" style:family="paragraph"><style:paragraph-properties fo:margin-bottom="0.2cm"/>'
    '</style:style><style:style style:name="Strong" style:family="text"><style:text-properties fo:font-weight="bold"/>'
    '</style:style><text:list-style style:name="Bullets"><text:list-level-style-bullet text:level="1" '
    'text:bullet-char="•"><style:list-level-properties text:space-before="0.5cm" text:min-label-width="0.5cm"/>'
    "</text:list-level-style-bullet></text:list-style>"
)
WORDS = (
    "coordinated field teams across three regions, supporting colleagues through long deployments and "
    "hard returns; listened without judging, referred to professional care when needed, and trained peers "
    "in psychological first aid, stress management and confidential follow-up after critical incidents"
).split()


def png(size: int, noise: int | None = None) -> bytes:
    """A square RGB picture: a gradient (a small portrait), or noise seeded by `noise` (a photo that
    compresses as badly)."""
    if noise is not None:
        rows = random.Random(noise)
        pixels = b"".join(b"\0" + rows.randbytes(3 * size) for _ in range(size))
    else:
        pixels = b"".join(
            b"\0" + b"".join(bytes((x * 255 // size, y * 255 // size, (x + y) * 127 // size)) for x in range(size))
            for y in range(size)
        )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(pixels)) + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def link(href: str, label: str) -> str:
    return f'<text:a xlink:type="simple" xlink:href="{escape(href)}">{escape(label)}</text:a>'


def picture(data: bytes, name: str, centimetres: int) -> str:
    """A picture embedded in its own paragraph."""
    return (
        f'<text:p><draw:frame draw:name="{name}" text:anchor-type="as-char" svg:width="{centimetres}cm" '
        f'svg:height="{centimetres}cm"><draw:image><office:binary-data>{base64.b64encode(data).decode()}'
        "</office:binary-data></draw:image></draw:frame></text:p>"
    )


def paragraph(index: int, words: int = 90) -> str:
    """A deterministic paragraph of CV prose."""
    text = " ".join(WORDS[(index * 7 + k) % len(WORDS)] for k in range(words))
    return f'<text:p text:style-name="Body">{escape(text.capitalize())}.</text:p>'


def bullets(index: int) -> str:
    """A bulleted list of tasks, each led by a word in bold."""
    items = "".join(
        f'<text:list-item><text:p><text:span text:style-name="Strong">{escape(WORDS[(index + k) % len(WORDS)])}:'
        f"</text:span> {escape(' '.join(WORDS[k : k + 12]))}</text:p></text:list-item>"
        for k in range(4)
    )
    return f'<text:list text:style-name="Bullets">{items}</text:list>'


def table(index: int) -> str:
    """A two-column table of years and roles, as CVs lay out their experience."""
    rows = "".join(
        "<table:table-row>"
        f"<table:table-cell><text:p>{2010 + (index + row) % 14}</text:p></table:table-cell>"
        f"<table:table-cell><text:p>Peer supporter, mission {index * 4 + row + 1}</text:p></table:table-cell>"
        "</table:table-row>"
        for row in range(4)
    )
    return f'<table:table table:name="Roles{index}"><table:table-column table:number-columns-repeated="2"/>{rows}</table:table>'


def cv_body(photos: tuple[bytes, ...] = ()) -> str:
    """About 30 pages: contact links, a portrait, then a heading, a table, a list and prose per mission;
    `photos` are shown one per mission from the first."""
    parts = [
        '<text:h text:outline-level="1">Amina Example</text:h>',
        "<text:p>" + " · ".join(link(href, label) for href, label in LINKS) + "</text:p>",
        picture(png(96), "Portrait", 3),
        f"<text:p>See {link('#Experience', 'Experience')}.</text:p>",
        '<text:h text:outline-level="2"><text:bookmark text:name="Experience"/>Experience</text:h>',
    ]
    for section in range(PAGES):
        parts += [f'<text:h text:outline-level="2">Mission {section + 1}</text:h>', table(section), bullets(section)]
        parts += [picture(photos[section], f"Photo{section}", 8)] if section < len(photos) else []
        parts += [paragraph(section * 4 + k) for k in range(4)]
    return "".join(parts)


def flat_odt(body: str) -> str:
    """A flat OpenDocument text (.fodt) holding `body`."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {NAMESPACES} office:version="1.3" '
        f'office:mimetype="application/vnd.oasis.opendocument.text"><office:styles>{STYLES}</office:styles>'
        f"<office:body><office:text>{body}</office:text></office:body></office:document>"
    )


def export(body: str, target: str) -> bytes:
    """`body` (ODF text) exported by soffice; `target` is a format, or format:filter:options."""
    return convert(flat_odt(body).encode(), "cv.fodt", target)


def convert(source: bytes, name: str, target: str) -> bytes:
    """The document `source`, in a file called `name`, converted by soffice to `target` (as in `export`)."""
    with tempfile.TemporaryDirectory() as profile, tempfile.TemporaryDirectory() as work:
        Path(work, name).write_bytes(source)
        command = ["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", target]
        subprocess.run(
            [*command, "--outdir", f"{work}/out", f"{work}/{name}"], check=True, capture_output=True, timeout=300
        )
        (produced,) = Path(work, "out").iterdir()
        return produced.read_bytes()


def large_pdf() -> bytes:
    """The 30-page CV with six photos, exported as a tagged PDF of about 5 MB."""
    return export(cv_body(tuple(png(1200, noise=seed) for seed in range(PHOTOS))), TAGGED_PDF)


def fixtures() -> dict[str, Callable[[], bytes]]:
    """Each file of tests/fixtures/cvs, and how soffice makes it."""
    bodies = {
        "cv": (cv_body(), ("odt", "docx", "pdf")),
        "link-https": (f"<text:p>Profile: {link(*LINKS[0])}</text:p>", ("odt", "docx")),
        "link-mailto": (f"<text:p>Write to {link(*LINKS[1])}</text:p>", ("docx",)),
        "dde": (
            f'<text:dde-connection-decls><text:dde-connection-decl office:name="Rates" {DDE} '
            'office:automatic-update="true"/></text:dde-connection-decls><text:p>Rate: '
            '<text:dde-connection text:connection-name="Rates">42</text:dde-connection></text:p>',
            ("odt",),
        ),
        "dde-section": (
            f'<text:section text:name="Rates"><office:dde-source {DDE} office:automatic-update="true"/>'
            "<text:p>42</text:p></text:section>",
            ("odt",),
        ),
    }
    made = {
        f"{stem}.{extension}": functools.partial(export, body, TAGGED_PDF if extension == "pdf" else extension)
        for stem, (body, extensions) in bodies.items()
        for extension in extensions
    }
    for kind, code in FIELDS.items():
        docx = samples.docx_with_paragraph("<w:r><w:t>Languages: </w:t></w:r>" + samples.field(escape(code)))
        for extension in ("docx", "odt") if kind == "ddeauto" else ("docx",):
            made[f"field-{kind}.{extension}"] = functools.partial(convert, docx, "cv.docx", extension)
    return made


def main() -> None:
    if shutil.which("soffice") is None:
        sys.exit("soffice not found: apt-get install --no-install-recommends libreoffice-writer-nogui")
    for name, make in fixtures().items():
        if len(sys.argv) == 1 or name in sys.argv[1:]:
            (FIXTURES / name).write_bytes(make())


if __name__ == "__main__":
    main()

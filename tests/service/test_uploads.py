"""Document type decided from content alone; hostile packages refused with the right reason."""

from __future__ import annotations

import random
import struct

import pytest

from forms_service.fields import DOCX, ODT, PDF
from forms_service.uploads import UploadRefused, inspect, safe_filename
from harness import samples


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (samples.pdf_bytes(), "cv.pdf", PDF),
        (samples.docx_bytes(), "cv.docx", DOCX),
        (samples.odt_bytes(), "cv.odt", ODT),
        (samples.pdf_bytes(), "cv.docx", PDF),  # wrong extension: content decides
        (samples.docx_bytes(), "cv.pdf", DOCX),
        (samples.odt_bytes(), None, ODT),
    ],
)
def test_accepted_documents_are_named_by_their_real_type(data, name, kind):
    document = inspect(name, data)
    assert document.kind == kind
    assert document.filename == (f"cv.{kind.extension}" if name else f"resume.{kind.extension}")
    assert document.data == data


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (samples.exe_bytes(), "file_type"),
        (samples.plain_zip(), "file_type"),
        (b"%PDX-1.4 not a pdf", "file_type"),
        (b"", "file_empty"),
        (samples.docm_bytes(), "file_macros"),
        (samples.docx_with_hidden_vba(), "file_macros"),
        (samples.odt_with_macros(), "file_macros"),
        (samples.encrypted_docx(), "file_encrypted"),
        (samples.encrypted_odt(), "file_encrypted"),
        (samples.zip_bomb_docx(), "file_damaged"),
        (samples.many_entries_docx(), "file_damaged"),
        (samples.docx_bytes()[:-30], "file_damaged"),
        (b"PK\x03\x04" + b"\0" * 100, "file_damaged"),
        (samples.pdf_bytes() + samples.docx_bytes(), "file_type"),  # polyglots: see below
        (samples.docx_bytes() + samples.pdf_bytes(), "file_damaged"),
    ],
)
def test_hostile_or_unknown_content_is_refused(data, code):
    with pytest.raises(UploadRefused) as refused:
        inspect("cv.pdf", data)
    assert refused.value.code == code


def test_odt_needs_its_stored_mimetype_first():
    entries = samples.odt_entries()
    deflated = samples._zip(entries)  # mimetype compressed: not a valid ODF package
    with pytest.raises(UploadRefused):
        inspect("cv.odt", deflated)


def test_zip_with_lying_sizes_is_caught_while_inflating():
    bomb = bytearray(samples.zip_bomb_docx(megabytes=60))
    # Declare tiny sizes in the central directory: the real inflated size must still be capped.
    start = bomb.find(b"PK\x01\x02")
    while start != -1:
        struct.pack_into("<I", bomb, start + 24, 10)
        start = bomb.find(b"PK\x01\x02", start + 4)
    with pytest.raises(UploadRefused) as refused:
        inspect("cv.docx", bytes(bomb))
    assert refused.value.code == "file_damaged"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\me\\CV final.pdf", "CV_final.pdf"),
        ("résumé ناصر.exe", "résumé_ناصر.pdf"),
        ('"; filename="x.exe', "filename_x.pdf"),
        ("\x00\x1f.pdf", "resume.pdf"),
        ("a" * 300 + ".pdf", "a" * 100 + ".pdf"),
        ("", "resume.pdf"),
        ("अनन्या शर्मा.pdf", "अनन्या_शर्मा.pdf"),  # vowel signs and virama are marks (Mn/Mc)
        ("สมชาย ใจดี.pdf", "สมชาย_ใจดี.pdf"),
        ("Sam 🕊\ufe0f.pdf", "Sam.pdf"),  # a variation selector left alone by a dropped emoji goes too
        ("\u0301abc.pdf", "abc.pdf"),  # a mark with nothing to combine with
        ("cv\u202egnp.exe", "cv_gnp.pdf"),  # bidi override
        ("cv\u200d\ufeff'`.pdf", "cv.pdf"),  # format characters and quotes
    ],
)
def test_file_names_are_sanitised(name, expected):
    assert safe_filename(name, PDF) == expected


def _mutated(data: bytes, rng: random.Random) -> bytes:
    """`data` with a few random bytes changed, as a damaged or hostile upload."""
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return bytes(mutated)


def test_damaged_packages_are_refused_never_an_exception():
    """zipfile raises zlib.error, ValueError ("negative seek value"), UnicodeDecodeError... on
    corrupt data; each must end as a refusal, not a 500."""
    rng = random.Random(7)
    seeds = [samples.docx_bytes(), samples.odt_bytes(), samples.docm_bytes()]
    for _ in range(2000):
        try:
            inspect("cv.docx", _mutated(rng.choice(seeds), rng))
        except UploadRefused:
            pass


def test_a_pdf_holding_zip_records_anywhere_is_refused():
    """A ZIP before the PDF's end or after it: an unzip tool (or Office) would open it."""
    pdf, package = samples.pdf_bytes(), samples.docx_bytes()
    for polyglot in (pdf + package, pdf[:-6] + package + pdf[-6:]):
        with pytest.raises(UploadRefused) as refused:
            inspect("cv.pdf", polyglot)
        assert refused.value.code == "file_type"


def test_a_pdf_with_megabytes_of_compressed_looking_data_is_accepted():
    """No false positive from random-looking stream bytes (a plausible ZIP record is ~1 in 2**42)."""
    noise = random.Random(3).randbytes(5 * 1024 * 1024)
    pdf = samples.pdf_bytes()
    data = pdf[:-6] + b"%" + noise.replace(b"\n", b" ") + b"\n" + pdf[-6:]
    assert inspect("cv.pdf", data).kind == PDF


def test_a_package_with_a_comment_or_trailing_bytes_is_damaged():
    """Office suites write no archive comment; there, or after the end record, a second file can hide."""
    package = samples.docx_bytes()
    commented = package[:-2] + struct.pack("<H", 5) + b"%PDF-"
    for data in (commented, package + b"\0"):
        with pytest.raises(UploadRefused) as refused:
            inspect("cv.docx", data)
        assert refused.value.code == "file_damaged"


def _refusal(data: bytes) -> str | None:
    try:
        inspect("cv", data)
    except UploadRefused as refused:
        return refused.code
    return None


def _odt_part(name: str, xml: str) -> bytes:
    """An ODT with one more XML part (styles, an embedded object's content)."""
    return samples.odt_with(parts=((name, xml.encode()),))


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + ']><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">&lol9;</Relationships>'
)
STYLES_WITH_WEB_BACKGROUND = (
    '<office:document-styles xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<style:background-image xlink:href="http://pixel.example.net/bg.png"/></office:document-styles>'
)


@pytest.mark.parametrize(
    "data",
    [
        samples.docx_remote_template(),
        samples.docx_remote_template("file://files.example.net/share/cv.dotm"),
        samples.docx_remote_template("\\\\files.example.net\\share\\cv.dotm"),
        samples.docx_linked_image(),
        samples.docx_linked_image("https://pixel.example.net/open.png"),
        samples.docx_with(
            (
                "word/glossary/_rels/document.xml.rels",
                samples.relationships(("image", "http://pixel.example.net/a.png", True)),
            )
        ),
        samples.docx_with(
            (
                "word/_rels/document.xml.rels",
                samples.relationships(("hyperlink", "\\\\files.example.net\\share\\a.docm", True)),
            )
        ),
        samples.docx_with(("word/_rels/document.xml.rels", samples.relationships(("afChunk", "chunk.rtf", False)))),
        samples.docx_with(("word/_rels/document.xml.rels", samples.relationships(("package", "p.xlsm", False)))),
        samples.docx_with_ole_object(),
        samples.docx_with_activex(),
        # Any outside relationship, a hyperlink's too (issue 12): nothing promises Word resolves it only on a click.
        samples.docx_with_hyperlinks(),
        samples.docx_with_image("tel:+41220000000"),
        samples.docx_with(("word/_rels/document.xml.rels", samples.relationships(("styles", "styles.xml", True)))),
        samples.odt_web_image(),
        samples.odt_web_image("\\\\files.example.net\\share\\photo.png"),
        samples.odt_web_image("//files.example.net/share/photo.png"),
        samples.odt_web_image("file:///etc/passwd"),
        samples.odt_web_image("../photo.png"),
        samples.odt_web_image("Pictures/../../photo.png"),
        samples.odt_web_image("Pictures/%2e%2e/%2E%2E/photo.png"),
        samples.odt_web_image("%5C%5Cfiles.example.net%5Cshare%5Cphoto.png"),
        samples.odt_web_image("http://[::1"),
        samples.odt_with_links_and_picture(),
        samples.odt_with_picture("tel:+41220000000"),
        samples.odt_with(
            '<text:p><text:a xlink:href="vnd.sun.star.script:Tools.Misc.Run?location=application">'
            "click</text:a></text:p>"
        ),
        samples.odt_with('<text:p><text:a xlink:href="file:///C:/Windows/System32/calc.exe">x</text:a></text:p>'),
        samples.odt_onload_macro(),
        samples.odt_with(scripts='<office:script script:language="ooo:Basic"/>'),
        _odt_part("styles.xml", STYLES_WITH_WEB_BACKGROUND),
        _odt_part("Object 1/content.xml", STYLES_WITH_WEB_BACKGROUND),
        samples.pdf_javascript_on_open(),
        samples.pdf_bytes(catalog_extra=b" /OpenAction << /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>"),
        samples.pdf_bytes(catalog_extra=b" /OpenAction << /S /URI /URI (https://pixel.example.net/) >>"),
        samples.pdf_bytes(
            catalog_extra=b" /OpenAction << /S /GoTo /D [3 0 R /Fit] /Next 6 0 R >>",
            extra_objects=(b"<< /S /Named /N /Print >>",),
        ),
        samples.pdf_bytes(catalog_extra=b" /OpenAction 9 0 R"),  # points nowhere: cannot be shown harmless
        samples.pdf_bytes(page_extra=b" /AA << /O 6 0 R >>", extra_objects=(b"<< /S /Named /N /Print >>",)),
        samples.pdf_bytes(
            page_extra=b" /Annots [6 0 R]",
            extra_objects=(
                b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /Launch /F (\\\\\\\\host\\\\x.exe) >> >>",
            ),
        ),
        samples.pdf_bytes(
            page_extra=b" /Annots [6 0 R]",
            extra_objects=(b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 9 9] /FS (a.exe) >>",),
        ),
        samples.pdf_with_embedded_file(),
        samples.pdf_javascript_in_object_stream(),
        samples.pdf_with_object_stream((b"<< /S /J#61vaScript /JS (1) >>",), catalog_extra=b" /OpenAction 6 0 R"),
    ],
)
def test_documents_acting_once_opened_are_refused(data):
    assert _refusal(data) == "file_active"


@pytest.mark.parametrize(
    "data",
    [
        samples.docx_with_image(),
        samples.odt_with_picture(),
        samples.odt_with('<text:p><draw:frame><draw:object xlink:href="./Object 1"/></draw:frame></text:p>'),
        samples.pdf_with_links(),
        samples.pdf_bytes(catalog_extra=b" /OpenAction << /S /GoTo /D [3 0 R /Fit] >>"),
        samples.pdf_bytes(catalog_extra=b" /OpenAction 6 0 R", extra_objects=(b"[3 0 R /XYZ null null 0]",)),
        samples.pdf_with_object_stream((b"<< /S /GoTo /D [3 0 R /Fit] >>",), catalog_extra=b" /OpenAction 6 0 R"),
    ],
)
def test_documents_with_pictures_inner_links_and_start_pages_are_accepted(data):
    """Embedded pictures and objects, links to the document's own headings and PDF web links stay."""
    assert _refusal(data) is None


def test_a_dtd_in_an_office_part_is_refused_without_expanding_it():
    """Office suites never write a DTD; refusing any keeps entity expansion (billion laughs) out."""
    package = samples.docx_with(("word/_rels/document.xml.rels", BILLION_LAUGHS.encode()))
    assert _refusal(package) == "file_damaged"


def test_an_object_stream_that_cannot_be_read_is_not_trusted():
    """What an object stream hides cannot be checked unless it inflates: damaged, encrypted, other filters."""
    good = samples.pdf_with_object_stream((b"[3 0 R /Fit]",), catalog_extra=b" /OpenAction 6 0 R")
    other_filter = good.replace(b"/Filter /FlateDecode", b"/Filter /LZWDecode  ")
    start = good.index(b"stream\nx\x9c") + len(b"stream\n")
    damaged = good[:start] + b"\x00\x01\x02\x03" + good[start + 4 :]
    encrypted = damaged.replace(b"/Root 1 0 R", b"/Root 1 0 R /Encrypt 1 0 R", 1)
    assert [_refusal(data) for data in (good, other_filter, damaged, encrypted)] == [
        None,
        "file_damaged",
        "file_damaged",
        "file_encrypted",
    ]


def test_object_streams_inflating_past_the_budget_are_refused():
    bulky = samples.pdf_with_object_stream((b"<< /Padding (" + b"0" * (17 * 1024 * 1024) + b") >>",))
    assert len(bulky) < 5 * 1024 * 1024
    assert _refusal(bulky) == "file_damaged"


def test_an_object_swallowed_by_an_unbalanced_string_is_still_read():
    """A reader finds object 7 through the cross-reference; read linearly it sits inside object 6's string."""
    hidden = b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /JavaScript /JS (app.alert\\(1\\)) >> >>"
    data = samples.pdf_bytes(page_extra=b" /Annots [7 0 R]", extra_objects=(b"(endobj", hidden))
    assert _refusal(data) == "file_active"

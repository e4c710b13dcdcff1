"""Document type decided from content alone; hostile packages refused with the right reason."""

from __future__ import annotations

import random
import struct

import pytest

from forms_service.fields import DOCX, ODT, PDF
from forms_service.uploads import UploadRefused, inspect, safe_filename
from tests import samples


@pytest.mark.parametrize(("data", "name", "kind"), [
    (samples.pdf_bytes(), "cv.pdf", PDF),
    (samples.docx_bytes(), "cv.docx", DOCX),
    (samples.odt_bytes(), "cv.odt", ODT),
    (samples.pdf_bytes(), "cv.docx", PDF),  # wrong extension: content decides
    (samples.docx_bytes(), "cv.pdf", DOCX),
    (samples.odt_bytes(), None, ODT),
])
def test_accepted_documents_are_named_by_their_real_type(data, name, kind):
    document = inspect(name, data)
    assert document.kind == kind
    assert document.filename == (f"cv.{kind.extension}" if name else f"resume.{kind.extension}")
    assert document.data == data


@pytest.mark.parametrize(("data", "code"), [
    (samples.exe_bytes(), "file_type"),
    (samples.plain_zip(), "file_type"),
    (b"%PDX-1.4 not a pdf", "file_type"),
    (b"", "file_empty"),
    (samples.docm_bytes(), "file_macros"),
    (samples.docx_with_hidden_vba(), "file_macros"),
    (samples.odt_with_macros(), "file_macros"),
    (samples.encrypted_docx(), "file_encrypted"),
    (samples.zip_bomb_docx(), "file_damaged"),
    (samples.many_entries_docx(), "file_damaged"),
    (samples.docx_bytes()[:-30], "file_damaged"),
    (b"PK\x03\x04" + b"\0" * 100, "file_damaged"),
    (samples.pdf_bytes() + samples.docx_bytes(), "file_type"),  # polyglots: see below
    (samples.docx_bytes() + samples.pdf_bytes(), "file_damaged"),
])
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


@pytest.mark.parametrize(("name", "expected"), [
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
])
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

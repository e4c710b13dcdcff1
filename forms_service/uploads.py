"""Deciding what an uploaded document really is, from its bytes alone (the file name and Content-Type are
the sender's to choose): PDF by its magic, DOCX and ODT by their ZIP structure.

Refused before anything reaches a coordinator's inbox: macros, encryption, unknown content, polyglots
(bytes that are a PDF to one program and a ZIP to another, so that what a mail filter checked is not what
a coordinator's tool opens), and what acts once opened (active_office.py, active_pdf.py; links that wait
for a click stay). Everything that reads the upload spends from one budget (budget.py): a file that needs
more work to check than any honest document is refused as damaged, never accepted unchecked.
"""

from __future__ import annotations

import io
import lzma
import re
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

import filetype

from . import active_office, active_pdf
from .budget import LIMITS, Budget, OverBudget
from .form_model import DOCX, ODT, PDF, FileType

MAX_ZIP_ENTRIES = 1000
MAX_RATIO = 100
RATIO_CHECK_ABOVE = 1024 * 1024  # small parts may compress well legitimately
READ_CHUNK = 64 * 1024
MAX_FILENAME_CHARS = 100

DOCX_MAIN = b"wordprocessingml.document.main+xml"
MACRO_MARKERS = (b"macroenabled", b"vbaproject")
ODT_MIMETYPE = ODT.mime.encode()
# A ZIP record with plausible fields: a local or central file header needing
# version 1.0 to 6.3, or an end record of a one-disk archive. Honest PDFs
# compress their streams, where such 6-to-8-byte runs occur by chance about
# once in 2**42 positions; a PDF+ZIP polyglot cannot avoid them.
ZIP_RECORD = re.compile(rb"PK(?:\x03\x04[\x0a-\x3f]\x00|\x01\x02..[\x0a-\x3f]\x00|\x05\x06\x00{4})", re.DOTALL)
# An office package ends with its end record (22 bytes) and no archive comment:
# office suites write none, and a comment or trailing bytes can carry a second file.
END_RECORD_SIZE = 22
PDF_MAGIC = b"%PDF-"
PDF_HEADER_WINDOW = 1024  # PDF readers accept the header anywhere in the first kilobyte
# What zipfile raises on corrupt or hostile data besides BadZipFile (fuzzing found
# zlib.error for bad deflate streams and ValueError such as "negative seek value"),
# and what expat raises on a part that is not well-formed XML or declares a DTD.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    EOFError,
    RuntimeError,  # NotImplementedError too
    OSError,
    ValueError,
    ExpatError,
)


class UploadRefused(Exception):
    """The upload is not an acceptable document; `code` is a key of form_model.ERRORS."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Document:
    """An accepted document: its detected type, a safe file name and the exact bytes."""

    kind: FileType
    filename: str
    data: bytes


def inspect(filename: str | None, data: bytes) -> Document:
    """Accept a PDF, DOCX or ODT decided from content, or raise UploadRefused."""
    if not data:
        raise UploadRefused("file_empty")
    kind = detect(data)
    return Document(kind, safe_filename(filename, kind), data)


def detect(data: bytes, budget: Budget | None = None) -> FileType:
    """The document type of `data`, checked deeply enough to refuse hostile files, within one budget
    (a fresh one unless given)."""
    budget = budget or Budget()
    try:
        if filetype.guess_mime(data) == PDF.mime:
            if ZIP_RECORD.search(data):
                raise UploadRefused("file_type")  # a PDF that is also a ZIP
            if refused := active_pdf.refusal(data, budget):
                raise UploadRefused(refused)
            return PDF
        if data.startswith(b"PK\x03\x04"):
            return _office_package(data, budget)
    except OverBudget:
        raise UploadRefused("file_damaged") from None
    raise UploadRefused("file_type")


def _office_package(data: bytes, budget: Budget) -> FileType:
    """Classify a ZIP as DOCX or ODT after checking it is safe to open. Bytes after the end record (a PDF
    appended to make a polyglot) make it damaged, checked before anything is inflated; a PDF header where PDF
    readers look for it, in the first kilobyte (a stored PDF as the first entry), makes it a polyglot too."""
    end = data[-END_RECORD_SIZE:]
    if not (end.startswith(b"PK\x05\x06") and end.endswith(b"\0\0")):
        raise UploadRefused("file_damaged")
    if PDF_MAGIC in data[:PDF_HEADER_WINDOW]:
        raise UploadRefused("file_type")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
        _check_entries(entries)
        _inflate_all(archive, entries, budget)
        names = {entry.filename for entry in entries}
        if "[Content_Types].xml" in names and "word/document.xml" in names:
            return _docx(archive, names, budget)
        if entries[0].filename == "mimetype":
            return _odt(archive, entries, names, budget)
    except ZIP_ERRORS:
        raise UploadRefused("file_damaged") from None
    raise UploadRefused("file_type")


def _check_entries(entries: list[zipfile.ZipInfo]) -> None:
    """Refuse before inflating anything: too many entries, encryption, declared bombs."""
    if not entries or len(entries) > MAX_ZIP_ENTRIES:
        raise UploadRefused("file_damaged")
    if any(entry.flag_bits & 0x1 for entry in entries):
        raise UploadRefused("file_encrypted")
    if sum(entry.file_size for entry in entries) > LIMITS["inflated"]:
        raise UploadRefused("file_damaged")


def _inflate_all(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], budget: Budget) -> None:
    """Inflate every part within the budget and a ratio cap, since declared sizes in a ZIP can lie; reading
    to the end also verifies each CRC, so a damaged package is caught here, not in a coordinator's hands."""
    for entry in entries:
        inflated = 0
        with archive.open(entry) as part:
            while chunk := part.read(READ_CHUNK):
                budget.spend("inflated", len(chunk))
                inflated += len(chunk)
                if inflated > RATIO_CHECK_ABOVE and inflated > MAX_RATIO * max(entry.compress_size, 1):
                    raise UploadRefused("file_damaged")


def _docx(archive: zipfile.ZipFile, names: set[str], budget: Budget) -> FileType:
    """A Word package with the plain (macro-free) main document type."""
    content_types = archive.read("[Content_Types].xml").lower()
    if any(name.lower().endswith("vbaproject.bin") for name in names) or any(
        marker in content_types for marker in MACRO_MARKERS
    ):
        raise UploadRefused("file_macros")
    if DOCX_MAIN not in content_types:
        raise UploadRefused("file_type")
    if active_office.docx_acts(archive, names, budget):
        raise UploadRefused("file_active")
    return DOCX


def _odt(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], names: set[str], budget: Budget) -> FileType:
    """An OpenDocument text: stored `mimetype` first, a manifest, content, no Basic or scripts."""
    first = entries[0]
    if first.compress_type != zipfile.ZIP_STORED or archive.read(first) != ODT_MIMETYPE:
        raise UploadRefused("file_type")
    if not {"META-INF/manifest.xml", "content.xml"} <= names:
        raise UploadRefused("file_type")
    manifest = archive.read("META-INF/manifest.xml")
    if any(name.startswith(("Basic/", "Scripts/")) for name in names) or b'full-path="basic/' in manifest.lower():
        raise UploadRefused("file_macros")
    if b"encryption-data" in manifest:
        raise UploadRefused("file_encrypted")  # ODF encrypts parts itself: nothing in them can be checked
    if active_office.odt_acts(archive, names, budget):
        raise UploadRefused("file_active")
    return ODT


def safe_filename(filename: str | None, kind: FileType) -> str:
    """A name safe in any header and file system, ending with the detected type's extension.

    Keeps letters, digits and combining marks of every script (people name
    files in their language; Devanagari or Thai words are not words without
    their vowel signs) but drops paths, control and format characters (bidi
    overrides), quotes and anything else that could break quoting.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", filename or ""))[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = re.sub(r"[\s_]+", "_", _word_characters(stem)).strip("_.")[:MAX_FILENAME_CHARS] or "resume"
    return f"{stem}.{kind.extension}"


def _word_characters(text: str) -> str:
    """`text` with every character that is not a letter, digit, mark, '-' or space replaced by '_'; a mark
    only after a kept character, so a variation selector left by a dropped emoji does not survive alone."""
    kept: list[str] = []
    for char in text:
        if char.isalnum() or char in "-_ ":
            kept.append(char)
        elif unicodedata.category(char).startswith("M") and kept and kept[-1] not in "-_ ":
            kept.append(char)
        else:
            kept.append("_")
    return "".join(kept)

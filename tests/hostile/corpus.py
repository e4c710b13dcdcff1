"""A corpus of nasty resumés and names, each with the answer the service owes it.

Files are built by harness/samples.py generators or combined from them here;
each entry says which type must be accepted (and relayed with which name) or
which refusal code the `resume` field must get.
"""

from __future__ import annotations

from dataclasses import dataclass

from forms_service.form_model import DOCX, ODT, PDF, FileType
from harness import samples


@dataclass(frozen=True)
class Nasty:
    """One hostile upload: its bytes, the name it is sent under, and the expected answer.

    `accepted` is the type it must be relayed as, else `refused` is the
    error code of the `resume` field.
    """

    id: str
    data: bytes
    filename: str
    accepted: FileType | None = None
    refused: str | None = None
    relayed_name: str | None = None


def ratio_bomb() -> bytes:
    """Declares honest sizes under the 50 MB cap, but inflates 10 MB from ~10 KB (ratio ~1000)."""
    return samples._zip([*samples.docx_entries(), ("word/media/padding.bin", b"\0" * (10 * 1024 * 1024))])


def corrupted_deflate_docx() -> bytes:
    """A DOCX whose first deflated part starts with an invalid block type (one byte changed)."""
    data = bytearray(samples.docx_bytes())
    data[30 + len("[Content_Types].xml")] = 0xFF  # first byte after the first local header and name
    return bytes(data)


def refused(code: str, filename: str, cases: dict[str, bytes]) -> list[Nasty]:
    """Uploads sent under one file name that all get refusal `code`, from {id: bytes}."""
    return [Nasty(case_id, data, filename, refused=code) for case_id, data in cases.items()]


PDF_DATA = samples.pdf_bytes()
OBJECT_STREAM_PDF = samples.pdf_with_object_stream(
    (b"<< /Title (CV) /Author (Amina) >>", b"[3 0 R /Fit]"), catalog_extra=b" /OpenAction 7 0 R"
)
# Names with #xx escapes are the same names: /J#61vaScript is /JavaScript.
ESCAPED_JAVASCRIPT_PDF = samples.pdf_bytes(
    catalog_extra=b" /OpenAction << /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>"
)
FIELD_CVS = ("field-includetext.docx", "field-link.docx", "field-dde.docx", "field-ddeauto.docx")
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'

FILES = (
    Nasty("pdf", PDF_DATA, "cv.pdf", accepted=PDF, relayed_name="cv.pdf"),
    Nasty("docx-named-pdf", samples.docx_bytes(), "cv.pdf", accepted=DOCX, relayed_name="cv.docx"),
    Nasty("odt-no-name", samples.odt_bytes(), "", accepted=ODT, relayed_name="resume.odt"),
    # Polyglots: a ZIP inside or after a PDF is not a PDF; bytes after a package's end record (checked
    # before anything is inflated, hence "damaged" even for a macro package) make it damaged.
    Nasty("polyglot-pdf+zip", PDF_DATA + samples.docx_bytes(), "cv.pdf", refused="file_type"),
    Nasty("polyglot-pdf+docm", PDF_DATA + samples.docm_bytes(), "cv.pdf", refused="file_type"),
    Nasty(
        "polyglot-pdf+zip-inside", PDF_DATA[:-6] + samples.docx_bytes() + PDF_DATA[-6:], "cv.pdf", refused="file_type"
    ),
    Nasty("polyglot-zip+pdf", samples.docx_bytes() + PDF_DATA, "cv.docx", refused="file_damaged"),
    Nasty("polyglot-stored-pdf-first", samples.pdf_first_docx(), "cv.docx", refused="file_type"),
    Nasty("polyglot-docm+pdf", samples.docm_bytes() + PDF_DATA, "cv.pdf", refused="file_damaged"),
    Nasty("junk-before-pdf-header", b"\x00" * 200 + PDF_DATA, "cv.pdf", refused="file_type"),
    *refused(
        "file_macros",
        "cv.docx",
        {
            "docx-macro-content-type": samples.docm_bytes(),
            "docx-hidden-vbaproject": samples.docx_with_hidden_vba(),
        },
    ),
    Nasty("odt-basic-macros", samples.odt_with_macros(), "cv.odt", refused="file_macros"),
    # Documents that act once opened (issue 12), each kind beside a clean one that is relayed as sent.
    # Links wait for a click, as in a PDF: web, mail and phone links stay in a DOCX or ODT (issue 23).
    *(
        Nasty(f"word-processor-{name}", samples.real_cv(name), name, accepted=kind, relayed_name=name)
        for name, kind in (
            ("cv.pdf", PDF),
            ("cv.docx", DOCX),
            ("cv.odt", ODT),
            ("link-https.docx", DOCX),
            ("link-mailto.docx", DOCX),
            ("link-https.odt", ODT),
        )
    ),
    Nasty("docx-image-no-links", samples.docx_with_image(), "cv.docx", accepted=DOCX, relayed_name="cv.docx"),
    Nasty(
        "docx-web-mail-links-and-image",
        samples.docx_with_hyperlinks(),
        "cv.docx",
        accepted=DOCX,
        relayed_name="cv.docx",
    ),
    *refused(
        "file_active",
        "cv.docx",
        {
            "docx-remote-template": samples.docx_remote_template(),
            "docx-template-as-hyperlink": samples.docx_template_disguised_as_hyperlink(),
            "docx-hyperlink-loaded-as-image": samples.docx_with_link(
                "https://pixel.example.net/open.png",
                '<a:blip xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" r:link="rId1"/>',
            ),
            "docx-link-to-a-file": samples.docx_with_link("file:///C:/Windows/System32/calc.exe"),
            "docx-linked-unc-image": samples.docx_linked_image(),
            "docx-ole-object": samples.docx_with_ole_object(),
            "docx-activex": samples.docx_with_activex(),
            # Word fields that load or run something (LibreOffice's exports, and split over runs as Word may).
            **{f"docx-{name.removesuffix('.docx')}": samples.real_cv(name) for name in FIELD_CVS},
            "docx-field-includepicture-split": samples.docx_with_paragraph(
                samples.field(" INCLUDE", 'PICTURE "https://pixel.example.net/open.png" \\d')
            ),
            "docx-field-ddeauto-in-footer": samples.docx_with_paragraph(
                '<w:fldSimple w:instr="DDEAUTO cmd.exe &quot;/k calc.exe&quot;"/>', "footer"
            ),
        },
    ),
    Nasty(
        "docx-hyperlink-field",
        samples.docx_with_paragraph(samples.field(' HYPERLINK "https://www.linkedin.com/in/amina" ')),
        "cv.docx",
        accepted=DOCX,
        relayed_name="cv.docx",
    ),
    Nasty("odt-picture-and-heading-link", samples.odt_with_picture(), "cv.odt", accepted=ODT, relayed_name="cv.odt"),
    Nasty("odt-links-and-picture", samples.odt_with_links_and_picture(), "cv.odt", accepted=ODT, relayed_name="cv.odt"),
    *refused(
        "file_active",
        "cv.odt",
        {
            "odt-link-to-a-script": samples.odt_with_picture("javascript:alert(1)"),
            "odt-web-image": samples.odt_web_image(),
            "odt-onload-macro-event": samples.odt_onload_macro(),
            "odt-dde-field": samples.real_cv("dde.odt"),
            "odt-dde-section": samples.real_cv("dde-section.odt"),
            "odt-word-ddeauto-kept-by-libreoffice": samples.real_cv("field-ddeauto.odt"),
        },
    ),
    Nasty("pdf-link-and-open-at-page", samples.pdf_with_links(), "cv.pdf", accepted=PDF, relayed_name="cv.pdf"),
    Nasty("pdf-object-stream", OBJECT_STREAM_PDF, "cv.pdf", accepted=PDF, relayed_name="cv.pdf"),
    *refused(
        "file_active",
        "cv.pdf",
        {
            "pdf-javascript-on-open": samples.pdf_javascript_on_open(),
            "pdf-javascript-escaped-name": ESCAPED_JAVASCRIPT_PDF,
            "pdf-javascript-in-object-stream": samples.pdf_javascript_in_object_stream(),
            "pdf-launch": samples.pdf_bytes(catalog_extra=b" /OpenAction << /S /Launch /F (cmd.exe) >>"),
            "pdf-embedded-file": samples.pdf_with_embedded_file(),
        },
    ),
    # Built to cost the checks (issue 22): judged within the upload's budget, refused as damaged.
    *refused(
        "file_damaged",
        "cv.pdf",
        {
            "pdf-chained-goto-92kb": samples.pdf_chained_goto(),
            "pdf-chained-goto-5mb": samples.pdf_chained_goto(5 * 1024 * 1024 - 1024),
            "pdf-2-million-nested-arrays": samples.pdf_nested_arrays(),
        },
    ),
    Nasty("zip-bomb-declared-64mb", samples.zip_bomb_docx(64), "cv.docx", refused="file_damaged"),
    Nasty("zip-bomb-ratio", ratio_bomb(), "cv.docx", refused="file_damaged"),
    Nasty("zip-bomb-many-entries", samples.many_entries_docx(5000), "cv.docx", refused="file_damaged"),
    Nasty("encrypted-docx", samples.encrypted_docx(), "cv.docx", refused="file_encrypted"),
    Nasty("encrypted-zip-named-zip", samples.encrypted_docx(), "cv.zip", refused="file_encrypted"),
    Nasty("empty-file", b"", "cv.pdf", refused="file_empty"),
    Nasty("renamed-exe", samples.exe_bytes(), "cv.pdf", refused="file_type"),
    Nasty("html-renamed-pdf", HTML, "cv.pdf", refused="file_type"),
    Nasty("svg-renamed-pdf", SVG, "cv.pdf", refused="file_type"),
    Nasty("plain-zip", samples.plain_zip(), "cv.docx", refused="file_type"),
    Nasty("corrupted-deflate-docx", corrupted_deflate_docx(), "cv.docx", refused="file_damaged"),
    Nasty("truncated-docx", samples.docx_bytes()[:-30], "cv.docx", refused="file_damaged"),
)


@dataclass(frozen=True)
class Name:
    """A name in one script, used as the person's name and as the resumé's file name."""

    script: str
    text: str
    relayed_name: str


# Every script people write in, and the marks that trip up naive code.
NAMES = (
    Name("latin", "Zoë Ångström-Łukasiewicz", "Zoë_Ångström-Łukasiewicz.pdf"),
    Name("greek", "Ἀλέξανδρος Παπαδόπουλος", "Ἀλέξανδρος_Παπαδόπουλος.pdf"),
    Name("cyrillic", "Анна Ковальчук", "Анна_Ковальчук.pdf"),
    Name("arabic", "ناصر الحسيني", "ناصر_الحسيني.pdf"),
    Name("hebrew", "נועה כהן", "נועה_כהן.pdf"),
    Name("devanagari", "अनन्या शर्मा", "अनन्या_शर्मा.pdf"),
    Name("thai", "สมชาย ใจดี", "สมชาย_ใจดี.pdf"),
    Name("ethiopic", "አበበ በቀለ", "አበበ_በቀለ.pdf"),
    Name("cjk", "王小明 山田太郎 김민준", "王小明_山田太郎_김민준.pdf"),
    Name("emoji", "Sam 🌍🕊️", "Sam.pdf"),
    Name("combining-marks-nfd", "Ame\u0301lie Nguye\u0302\u0303n", "Amélie_Nguyễn.pdf"),
)

"""The corpus of nasty files, names and file names, each through the real app with its expected answer."""

from __future__ import annotations

import io
import unicodedata

import pytest

from forms_service import i18n
from forms_service.fields import VOLUNTEER
from harness.settings import JSON, volunteer_form
from tests.hostile import raw
from tests.hostile.corpus import FILES, NAMES, PDF_DATA, Nasty
from tests.hostile.expect import check_response, delivered
from tests.service.helpers import post

STAFF_INBOX = "volunteer@cch.example.org"


def _cases(items, language_of=lambda index: ("en", "fr")[index % 2]):
    """pytest params, each in one of both languages."""
    return [
        pytest.param(item, language_of(index), id=item.id if hasattr(item, "id") else item.script)
        for index, item in enumerate(items)
    ]


def relayed_attachment(app, smtp_server):
    """(file name, content type, bytes) of the resumé in the association's email."""
    staff = [message.parsed() for message in delivered(app, smtp_server) if STAFF_INBOX in message.rcpt_tos]
    assert len(staff) == 1
    (part,) = [part for part in staff[0].walk() if part.get_filename()]
    return part.get_filename(), part.get_content_type(), part.get_payload(decode=True)


@pytest.mark.parametrize(("nasty", "language"), _cases(FILES))
def test_nasty_file_gets_its_expected_answer(app, client, smtp_server, nasty: Nasty, language):
    resume = (io.BytesIO(nasty.data), nasty.filename, "application/pdf")
    response = post(client, "volunteer", volunteer_form(resume=resume, lang=language), JSON)
    check_response(response, language)
    if nasty.accepted:
        assert response.status_code == 202
        assert relayed_attachment(app, smtp_server) == (nasty.relayed_name, nasty.accepted.mime, nasty.data)
    else:
        expected = i18n.catalogue(language).gettext(VOLUNTEER["resume"].error(nasty.refused), max_megabytes=5)
        assert (response.status_code, response.get_json()["errors"]) == (400, {"resume": expected})
        assert delivered(app, smtp_server) == []


@pytest.mark.parametrize(("name", "language"), _cases(NAMES))
def test_names_in_every_script_are_accepted_and_kept(app, client, smtp_server, name, language):
    resume = (io.BytesIO(PDF_DATA), f"{name.text}.pdf", "application/pdf")
    response = post(client, "volunteer", volunteer_form(name=name.text, resume=resume, lang=language), JSON)
    check_response(response, language)
    assert response.status_code == 202
    filename, _, _ = relayed_attachment(app, smtp_server)
    assert filename == name.relayed_name
    staff = [m.parsed() for m in smtp_server.messages if STAFF_INBOX in m.rcpt_tos][0]
    assert unicodedata.normalize("NFC", name.text) in staff["Subject"]


# Raw Content-Disposition values: what a hostile client writes, unquoted by any library.
HOSTILE_DISPOSITIONS = {
    "dot-dot-slash": (b'filename="../../../etc/cron.d/cv.pdf"', "cv.pdf"),
    "dot-dot-backslash": (b'filename="..\\\\..\\\\Windows\\\\System32\\\\cv.pdf"', "cv.pdf"),
    "nul-byte": (b'filename="cv\x00.exe"', "cv.pdf"),
    "crlf-encoded": (b"filename*=UTF-8''cv%0D%0AX-Injected%3A%20yes%00.pdf", "cv_X-Injected_yes.pdf"),
    "rtl-override": ('filename="cv\u202efdp.exe"'.encode(), "cv_fdp.pdf"),
    "repeated-parameter": (b'filename="cv.pdf"; filename="../evil.exe"', "evil.pdf"),
}


@pytest.mark.parametrize("disposition", HOSTILE_DISPOSITIONS.values(), ids=HOSTILE_DISPOSITIONS)
def test_hostile_file_names_are_sanitised_in_the_relayed_mail(app, client, smtp_server, disposition):
    raw_name, relayed_name = disposition
    head = b'Content-Disposition: form-data; name="resume"; ' + raw_name + b"\r\nContent-Type: application/pdf"
    fields = [raw.text_part(key, value) for key, value in volunteer_form(resume=None).items()]
    content_type, body = raw.multipart([*fields, (head, PDF_DATA)])
    response = post(client, "volunteer", body, {**JSON, "Content-Type": content_type})
    check_response(response, "en")
    assert response.status_code == 202
    assert relayed_attachment(app, smtp_server)[0] == relayed_name
    assert all(
        "X-Injected" not in message.data.decode(errors="replace").split("\r\n\r\n")[0]
        for message in smtp_server.messages
    )

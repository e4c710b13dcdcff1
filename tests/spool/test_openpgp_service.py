"""OpenPGP through the production setup: FORMS_PGP_KEYS read from the environment by
`gunicorn forms_service.wsgi:app`, a form posted over HTTP, the relayed email
decrypted by GnuPG; unusable keys stop start-up with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from benchmarks.server import PROJECT, Gunicorn, service_environment
from forms_service.app import create_app
from tests import samples
from tests.service.helpers import JSON, SITE, as_shown, post, volunteer_form
from tests.service.test_injection import ENCODED_NAMES, VOLUNTEER_SUBJECTS
from tests.spool.test_openpgp import decrypt_with_gpg, decrypted_bytes

RESUME = samples.pdf_bytes("Resume of Amina: ten years with refugees")


@pytest.fixture
def pgp_settings(app_config, pgp_keys) -> dict:
    """The test settings with the association's two public keys."""
    return {**app_config, "PGP_KEYS": [str(pgp_keys.files["good"]), str(pgp_keys.files["second"])]}


def test_posted_application_arrives_encrypted_and_decrypts_to_the_original(pgp_settings, pgp_keys, smtp_server):
    form = volunteer_form(resume=None, lang="en")
    with Gunicorn(settings=pgp_settings) as server:
        response = requests.post(f"http://127.0.0.1:{server.port}/forms/volunteer", data=form,
                                 files={"resume": ("CV Amina.pdf", RESUME, "application/pdf")},
                                 headers={**SITE, **JSON}, timeout=30)
        assert response.status_code == 202, response.text
        received = smtp_server.handler.wait_for(2, timeout=20)
    submission_id = response.json()["id"]
    association = next(message for message in received if message.rcpt_tos == ("volunteer@cch.example.org",))
    outer = association.parsed()
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer["Subject"] == "Nouvelle candidature bénévole (chiffrée)"
    assert outer["Message-ID"] == f"<{submission_id}.1@site.test>"
    for secret in (b"Amina", b"amina@example.org", b"listen", b"Amman", RESUME[-200:]):
        assert secret not in association.data

    inner = decrypt_with_gpg(pgp_keys, association.data)
    assert inner["Subject"] == "Candidature bénévole de Amina Haddad"
    assert inner["Reply-To"] == "amina@example.org"
    body = inner.get_body(("plain",)).get_content()
    for text in ("Amina Haddad", "amina@example.org", "I want to listen.", "Amman, UTC+3", "CV_Amina.pdf"):
        assert text in body
    (attachment,) = inner.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == RESUME

    acknowledgement = next(message for message in received if message.rcpt_tos == ("amina@example.org",))
    assert acknowledgement.parsed()["Subject"] == "We have received your application"  # no key: plain, echoes nothing


@pytest.mark.parametrize("staff_language", ["fr", "en"])
def test_the_protected_subject_inside_shows_the_name_as_typed(pgp_settings, pgp_keys, smtp_server, staff_language):
    """The real subject travels inside (protected headers): there too an encoded word stays literal."""
    client = create_app({**pgp_settings, "STAFF_LANGUAGE": staff_language}).test_client()
    name = ENCODED_NAMES[0]
    assert post(client, "volunteer", volunteer_form(name=name), JSON).status_code == 202
    association = next(message for message in smtp_server.messages
                       if message.rcpt_tos == ("volunteer@cch.example.org",))
    shown = as_shown(decrypted_bytes(pgp_keys, association.data))
    assert (shown["Subject"], shown["Reply-To"]) == (VOLUNTEER_SUBJECTS[staff_language].format(name),
                                                    "amina@example.org")


@pytest.mark.parametrize(("name", "reason"), [("expired", "expired on 2020-01-02"), ("revoked", "is revoked")])
def test_unusable_key_stops_start_up_with_one_line(pgp_settings, pgp_keys, name, reason):
    settings = {**pgp_settings, "PGP_KEYS": [str(pgp_keys.files["good"]), str(pgp_keys.files[name])]}
    result = subprocess.run([sys.executable, "-c", "import forms_service.wsgi"], cwd=PROJECT,
                            env=service_environment(settings), capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert result.stderr == (f"forms_service: FORMS_PGP_KEYS key {pgp_keys.fingerprint(name)} {reason}: "
                             "remove it or configure a valid key\n")

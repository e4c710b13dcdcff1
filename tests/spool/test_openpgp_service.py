"""OpenPGP through the production setup: FORMS_PGP_KEYS read from the environment by
`gunicorn forms_service.wsgi:app`, a form posted over HTTP, the relayed email
decrypted by GnuPG; unusable keys stop start-up with one line."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import requests

from forms_service.app import create_app
from forms_service.fields import RESUME_MAX_BYTES
from harness import samples
from harness.gunicorn import PROJECT, Gunicorn, service_environment
from harness.settings import JSON, OPERATOR, SITE, support_form, volunteer_form
from tests.service.helpers import as_shown, post
from tests.service.test_injection import ENCODED_NAMES, VOLUNTEER_SUBJECTS
from tests.spool.conftest import gpg
from tests.spool.test_openpgp import decrypt_with_gpg, decrypted_bytes

RESUME = samples.pdf_bytes("Resume of Amina: ten years with refugees")


@pytest.fixture
def pgp_settings(app_config, pgp_keys) -> dict:
    """The test settings with the association's two public keys."""
    return {**app_config, "PGP_KEYS": [str(pgp_keys.files["good"]), str(pgp_keys.files["second"])]}


def test_posted_application_arrives_encrypted_and_decrypts_to_the_original(pgp_settings, pgp_keys, smtp_server):
    form = volunteer_form(resume=None, lang="en")
    with Gunicorn(settings=pgp_settings) as server:
        response = requests.post(
            f"http://127.0.0.1:{server.port}/forms/volunteer",
            data=form,
            files={"resume": ("CV Amina.pdf", RESUME, "application/pdf")},
            headers={**SITE, **JSON},
            timeout=30,
        )
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
    association = next(
        message for message in smtp_server.messages if message.rcpt_tos == ("volunteer@cch.example.org",)
    )
    shown = as_shown(decrypted_bytes(pgp_keys, association.data))
    assert (shown["Subject"], shown["Reply-To"]) == (
        VOLUNTEER_SUBJECTS[staff_language].format(name),
        "amina@example.org",
    )


@pytest.mark.parametrize(
    ("name", "reason", "loads"),
    [
        ("revoked", "is revoked", ["-c", "import forms_service.wsgi"]),  # any start, a worker's too
        ("expired", "expired on 2020-01-02", ["-m", "forms_service.startup"]),  # the master's check, before forking
    ],
)
def test_unusable_key_stops_start_up_with_one_line(pgp_settings, pgp_keys, name, reason, loads):
    settings = {**pgp_settings, "PGP_KEYS": [str(pgp_keys.files["good"]), str(pgp_keys.files[name])]}
    result = subprocess.run(
        [sys.executable, *loads],
        cwd=PROJECT,
        env=service_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4
    assert result.stderr == (
        f"forms_service: FORMS_PGP_KEYS key {pgp_keys.fingerprint(name)} {reason}: remove it or configure a valid key\n"
    )


def test_with_the_only_key_expired_nothing_is_accepted_and_health_is_red(pgp_settings, pgp_keys, smtp_server):
    """Sending the association's copy in clear would break the promise: the person is told
    to try again (503, nothing kept), health is red and says why."""
    app = create_app({**pgp_settings, "PGP_KEYS": [str(pgp_keys.files["expired"])]})
    client = app.test_client()
    response = post(client, "volunteer", volunteer_form(), JSON)
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("Sorry, we could not pass on your message just now.")
    assert app.extensions["forms_spool"].stats().queued == 0 and smtp_server.messages == []
    assert client.get("/forms/healthz").status_code == 503
    operator = client.get("/forms/healthz", headers=OPERATOR).get_json()
    assert (operator["ok"], operator["status"]) == (False, "CRITICAL")
    assert operator["reasons"][0] == "no usable OpenPGP key: every key in FORMS_PGP_KEYS has expired"
    assert operator["reasons"][1].startswith(f"OpenPGP key {pgp_keys.fingerprint('expired')} expired on 2020-01-02")


def test_with_one_key_expired_mail_is_encrypted_to_the_others_only(pgp_settings, pgp_keys, smtp_server, caplog):
    app = create_app({**pgp_settings, "PGP_KEYS": [str(pgp_keys.files["good"]), str(pgp_keys.files["expired"])]})
    client = app.test_client()
    assert post(client, "volunteer", volunteer_form(), JSON).status_code == 202
    association = next(
        message for message in smtp_server.messages if message.rcpt_tos == ("volunteer@cch.example.org",)
    )
    payload = list(association.parsed().iter_parts())[1].get_payload(decode=True)
    listing = gpg(pgp_keys.home, "--list-packets", stdin=payload).decode(errors="replace")
    assert listing.count(":pubkey enc packet:") == 1 and f"keyid {pgp_keys.encryption_key_id('good')}" in listing
    assert f"OpenPGP key {pgp_keys.fingerprint('expired')} expired on 2020-01-02" in caplog.text
    assert client.get("/forms/healthz").status_code == 200
    operator = client.get("/forms/healthz", headers=OPERATOR).get_json()
    assert (operator["ok"], operator["status"]) == (True, "CRITICAL")  # accepted, but a reader gets nothing
    (reason,) = operator["reasons"]
    assert reason.endswith("put its renewed public key in FORMS_PGP_KEYS (or remove it) and restart")


def test_a_key_expiring_soon_is_a_warning_on_every_health_check(pgp_settings, pgp_keys):
    client = create_app({**pgp_settings, "PGP_KEYS": [str(pgp_keys.files["expiring"])]}).test_client()
    for _ in range(2):
        answer = client.get("/forms/healthz", headers=OPERATOR)
        assert answer.status_code == 200
        assert answer.get_json()["status"] == "WARNING"
        (warning,) = answer.get_json()["reasons"]
        assert warning.startswith(f"OpenPGP key {pgp_keys.fingerprint('expiring')} expires on ")
        assert warning.endswith(": renew it")


def test_a_5_mb_application_decrypts_to_the_very_bytes_uploaded(pgp_settings, pgp_keys, smtp_server):
    """The largest resumé allowed, through gunicorn: encrypted by GnuPG as the message is written,
    armored as it is spooled, and what GnuPG decrypts is the upload."""
    resume = samples.padded_pdf(RESUME_MAX_BYTES - 64 * 1024)  # the form's other fields fit in the cap too
    with Gunicorn(settings=pgp_settings) as server:
        response = requests.post(
            f"http://127.0.0.1:{server.port}/forms/volunteer",
            data=volunteer_form(resume=None),
            files={"resume": ("cv.pdf", resume, "application/pdf")},
            headers={**SITE, **JSON},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        received = smtp_server.handler.wait_for(2, timeout=60)
    association = next(message for message in received if message.rcpt_tos == ("volunteer@cch.example.org",))
    (attachment,) = decrypt_with_gpg(pgp_keys, association.data).iter_attachments()
    assert attachment.get_content() == resume


def test_without_gnupg_start_up_stops_with_one_line(pgp_settings, tmp_path):
    environment = {**service_environment(pgp_settings), "PATH": str(tmp_path)}  # no gpg on it
    result = subprocess.run(
        [sys.executable, "-m", "forms_service.startup"],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4
    assert result.stderr == (
        "forms_service: FORMS_PGP_KEYS needs GnuPG's gpg, which is not installed (Debian: apt-get install gnupg)\n"
    )


def test_gnupg_gone_while_running_refuses_rather_than_sends_in_clear(
    pgp_settings, smtp_server, monkeypatch, tmp_path, caplog
):
    """gnupg removed under a running service (an upgrade gone wrong): 503, nothing kept, health red, and the
    operator told why."""
    app = create_app(pgp_settings)
    client = app.test_client()
    monkeypatch.setenv("PATH", str(tmp_path))
    with caplog.at_level(logging.ERROR):
        response = post(client, "support", support_form(), JSON)
    assert response.status_code == 503
    assert app.extensions["forms_spool"].stats().queued == 0 and smtp_server.messages == []
    assert "OpenPGP encryption failed: gpg cannot be run" in caplog.text
    assert client.get("/forms/healthz").status_code == 503
    assert (
        client.get("/forms/healthz", headers=OPERATOR)
        .get_json()["reasons"][0]
        .startswith("OpenPGP encryption failed (gpg cannot be run")
    )

"""OpenPGP/MIME: what GnuPG encrypts to the vetted keys, GnuPG decrypts, and bad keys stop start-up."""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

import pysequoia
import pytest

from forms_service import mime, openpgp
from forms_service.config import ConfigError
from forms_service.openpgp import KeyRefused, NoUsableKey, encrypt_mime, load_recipients, recipients_from_config
from tests.spool.conftest import gpg

RESUME = b"%PDF-1.7\n" + os.urandom(4000) + b"\n%%EOF\n"


def inner_message() -> tuple[list[tuple[str, str]], mime.Entity]:
    """Headers and body of a notification as compose.py makes them: real subject, fields, resumé."""
    headers = [
        ("From", "CoCreate Humanity <forms@association.test>"),
        ("To", "volunteers@association.test"),
        ("Reply-To", "zoe@example.org"),  # the validated address only, as compose.py sets it
        ("Subject", mime.header_value("Subject", "Candidature bénévole : Zoë")),
        ("Date", "Mon, 23 Nov 2026 10:00:00 +0000"),
        ("Message-ID", "<sub-123.volunteer@association.test>"),
        ("Auto-Submitted", "auto-generated"),
    ]
    body = mime.multipart(
        "mixed",
        [
            mime.text("Nom : Zoë\nMotivation : aider les humanitaires épuisés\n", "plain"),
            mime.attachment(RESUME, "application/pdf", "cv-zoë.pdf"),
        ],
    )
    return headers, body


def encrypted(certs) -> bytes:
    """The wire bytes of inner_message() encrypted to `certs`."""
    return encrypt_mime(*inner_message(), certs, "Nouvelle candidature")


def decrypt_with_gpg(keys, wire: bytes) -> EmailMessage:
    """Parse the wire bytes as a mail client would and let GnuPG decrypt part 2."""
    return message_from_bytes(decrypted_bytes(keys, wire), policy=policy.default)


def decrypted_bytes(keys, wire: bytes) -> bytes:
    """The inner message exactly as GnuPG decrypts it from part 2 of the wire bytes."""
    received = message_from_bytes(wire, policy=policy.default)
    version, payload = received.iter_parts()
    assert version.get_content_type() == "application/pgp-encrypted"
    assert version.get_payload(decode=True).strip() == b"Version: 1"
    assert payload.get_content_type() == "application/octet-stream"
    return gpg(keys.home, "--decrypt", stdin=payload.get_payload(decode=True))


def test_round_trip_through_gnupg(pgp_keys):
    certs = load_recipients([str(pgp_keys.files["good"])]).usable()
    wire = encrypted(certs)
    outer = message_from_bytes(wire, policy=policy.default)
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer.get_param("protocol") == "application/pgp-encrypted"
    inner = decrypt_with_gpg(pgp_keys, wire)
    assert inner["Subject"] == "Candidature bénévole : Zoë"
    assert inner["Reply-To"] == "zoe@example.org"
    assert inner.get_param("protected-headers") == "v1"
    assert "aider les humanitaires épuisés" in inner.get_body(("plain",)).get_content()
    (attachment,) = inner.iter_attachments()
    assert attachment.get_filename() == "cv-zoë.pdf"
    assert attachment.get_content() == RESUME


def test_outer_message_shows_no_personal_data(pgp_keys):
    certs = load_recipients([str(pgp_keys.files["good"])]).usable()
    wire = encrypted(certs)
    outer = message_from_bytes(wire, policy=policy.default)
    assert outer["Subject"] == "Nouvelle candidature"
    assert outer["Message-ID"] == "<sub-123.volunteer@association.test>"  # duplicates stay recognisable
    assert outer["From"] and outer["To"] and outer["Date"]
    assert outer["Auto-Submitted"] == "auto-generated"
    assert outer["Reply-To"] is None
    for secret in (b"zoe@example.org", "Zoë".encode(), b"Candidature", b"Motivation", RESUME[10:40]):
        assert secret not in wire


def test_every_configured_reader_can_decrypt(pgp_keys, tmp_path):
    both = tmp_path / "both.asc"
    both.write_bytes(pgp_keys.files["good"].read_bytes() + pgp_keys.files["second"].read_bytes())
    certs = load_recipients([str(both)]).usable()
    assert len(certs) == 2
    outer = message_from_bytes(encrypted(certs), policy=policy.default)
    payload = list(outer.iter_parts())[1].get_payload(decode=True)
    listing = gpg(pgp_keys.home, "--list-packets", stdin=payload).decode(errors="replace")
    assert listing.count(":pubkey enc packet:") == 2  # one session key packet per reader
    for name in ("good", "second"):
        assert f"keyid {pgp_keys.encryption_key_id(name)}" in listing


def test_armored_blocks_are_accepted_alone_or_in_the_list(pgp_keys):
    armored = pgp_keys.files["good"].read_text()
    assert len(load_recipients([armored, str(pgp_keys.files["second"])]).certs) == 2
    assert len(load_recipients(armored).certs) == 1


@pytest.mark.parametrize(
    "name, reason",
    [
        ("revoked", "is revoked"),
        (
            "signonly",
            "cannot be encrypted to (gpg exited with status 2: gpg: [stdin]: encryption failed: Unusable public key)",
        ),
    ],
)
def test_unusable_keys_stop_start_up_naming_the_fingerprint(pgp_keys, name, reason):
    setting = [str(pgp_keys.files["good"]), str(pgp_keys.files[name])]
    with pytest.raises(ConfigError) as refused:
        recipients_from_config({"PGP_KEYS": setting})
    line = str(refused.value)
    assert line.startswith("forms_service: FORMS_PGP_KEYS key ")
    assert pgp_keys.fingerprint(name) in line
    assert reason in line
    assert "\n" not in line


@pytest.mark.parametrize(
    "kind",
    [
        {"cipher_suite": pysequoia.CipherSuite.Cv448},  # X448: GnuPG 2.4 has it, Debian 12's 2.2 does not
        {"profile": pysequoia.Profile.RFC9580},  # a version 6 key
    ],
)
def test_a_key_pysequoia_reads_but_gpg_cannot_use_stops_start_up(pgp_keys, tmp_path, kind):
    """Vetted by encrypting with gpg, as submissions are: otherwise start-up passes and every
    submission is refused."""
    cert = pysequoia.Tsk.generate("Newer <newer@keys.test>", **kind).extract_certificate()
    key_file = tmp_path / "newer.asc"
    key_file.write_text(str(cert))
    with pytest.raises(ConfigError) as refused:
        recipients_from_config({"PGP_KEYS": [str(pgp_keys.files["good"]), str(key_file)]})
    assert str(refused.value).startswith(
        f"forms_service: FORMS_PGP_KEYS key {cert.fingerprint.upper()} cannot be "
        "encrypted to (gpg exited with status 2: gpg: [stdin]: encryption failed: "
    )


def test_an_expired_key_is_left_out_at_each_use_naming_it_once(pgp_keys, caplog):
    """Loading keeps it (operator commands must run); encrypting never uses it, and says what to do."""
    keyring = load_recipients([str(pgp_keys.files["good"]), str(pgp_keys.files["expired"])])
    before, after = (datetime.datetime(2020, 1, day, tzinfo=datetime.UTC) for day in (1, 3))
    assert len(keyring.usable(before)) == 2 and caplog.records == []
    with caplog.at_level(logging.ERROR):
        (usable,) = keyring.usable(after)
        keyring.usable(after)
    assert usable.fingerprint.upper() == pgp_keys.fingerprint("good")
    (record,) = caplog.records
    assert record.levelname == "ERROR"
    assert record.getMessage() == (
        f"OpenPGP key {pgp_keys.fingerprint('expired')} expired on 2020-01-02: nothing is "
        "encrypted to it any more; put its renewed public key in FORMS_PGP_KEYS (or "
        "remove it) and restart"
    )
    with pytest.raises(
        ConfigError, match=f"FORMS_PGP_KEYS key {pgp_keys.fingerprint('expired')} expired on 2020-01-02"
    ):
        keyring.refuse_expired()


def test_when_every_key_has_expired_nothing_can_be_encrypted(pgp_keys):
    keyring = load_recipients([str(pgp_keys.files["expired"])])
    with pytest.raises(NoUsableKey):
        keyring.usable()
    assert keyring.notices() == (
        [
            f"OpenPGP key {pgp_keys.fingerprint('expired')} expired on 2020-01-02: nothing is "
            "encrypted to it any more; put its renewed public key in FORMS_PGP_KEYS (or "
            "remove it) and restart"
        ],
        [],
    )


def test_a_key_expiring_within_30_days_is_a_warning(pgp_keys, caplog):
    keyring = load_recipients([str(pgp_keys.files["expired"])])
    soon = datetime.datetime(2019, 12, 20, tzinfo=datetime.UTC)
    with caplog.at_level(logging.WARNING):
        assert keyring.notices(soon) == (
            [],
            [f"OpenPGP key {pgp_keys.fingerprint('expired')} expires on 2020-01-02: renew it"],
        )
    assert "renew it" in caplog.text
    assert keyring.notices(datetime.datetime(2019, 11, 1, tzinfo=datetime.UTC)) == ([], [])


@pytest.mark.parametrize(
    "setting, message",
    [
        (["/nonexistent/key.asc"], "entry /nonexistent/key.asc is not a readable OpenPGP certificate"),
        ([], "is an empty list"),
    ],
)
def test_unreadable_settings_stop_start_up(setting, message):
    with pytest.raises(KeyRefused, match=message):
        load_recipients(setting)


def test_secret_keys_are_refused(pgp_keys):
    with pytest.raises(KeyRefused, match="contains secret key material"):
        load_recipients([str(pgp_keys.files["good-secret"])])


def test_unset_means_no_openpgp():
    assert recipients_from_config({}) is None
    assert recipients_from_config({"PGP_KEYS": None}) is None


def test_the_encrypted_part_is_ascii_armor_that_gnupg_reads(pgp_keys):
    """gpg's own armor, in CRLF lines: GnuPG decrypts it to the inner message exactly."""
    certs = load_recipients([str(pgp_keys.files["good"])]).usable()
    headers, body = inner_message()
    inner = mime.message(headers, mime.with_parameter(body, 'protected-headers="v1"'))
    wire = encrypt_mime(headers, body, certs, "Nouvelle candidature")
    assert b"\n" not in wire.replace(b"\r\n", b"")
    _, payload = message_from_bytes(wire, policy=policy.default).iter_parts()
    assert payload["Content-Type"] == 'application/octet-stream; name="encrypted.asc"'
    assert (payload["Content-Description"], payload["Content-Transfer-Encoding"]) == (
        "OpenPGP encrypted message",
        "7bit",
    )
    start = wire.index(b"-----BEGIN PGP MESSAGE-----\r\n")
    end = wire.index(b"-----END PGP MESSAGE-----\r\n") + len(b"-----END PGP MESSAGE-----\r\n")
    assert gpg(pgp_keys.home, "--decrypt", stdin=wire[start:end]) == inner


def test_a_gpg_that_stops_reading_is_killed_rather_than_hanging_the_submission(pgp_keys, tmp_path, monkeypatch):
    """A stand-in gpg that never reads: feeding it a resumé fills the pipe, and the writer would wait
    for ever; the timeout covers the feeding too."""
    certs = load_recipients([str(pgp_keys.files["good"])]).usable()
    stuck = tmp_path / "gpg"
    stuck.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 60\n")
    stuck.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(openpgp, "GPG_TIMEOUT_SECONDS", 1)
    started = time.monotonic()
    with pytest.raises(openpgp.GnuPGFailed, match="gpg did not finish within 1 s"):
        openpgp.encrypt(bytes(1024 * 1024), certs)
    assert time.monotonic() - started < 30

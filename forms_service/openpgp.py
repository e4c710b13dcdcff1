"""OpenPGP/MIME (RFC 3156) encryption of emails to the association's public keys (README.md, "Endpoints").

The only module that touches pysequoia (which reads and vets the keys) and GnuPG (which encrypts). Every email
to the association is encrypted to all of FORMS_PGP_KEYS, so the server keeps no key that can read it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import pysequoia
from pysequoia.packet import PacketPile, Tag

from . import mime
from .config import ConfigError

log = logging.getLogger(__name__)

# Routing, threading and RFC 3834 headers stay visible. Reply-To is the
# submitter's address, personal data: it travels only inside the encrypted
# part (whose text body lays out the address as well).
OUTER_HEADERS = ("From", "To", "Cc", "Date", "Message-ID", "Auto-Submitted")
ARMORED_PREFIX = "-----BEGIN PGP"
SECRET_TAGS = (Tag.SecretKey, Tag.SecretSubkey)
EXPIRY_WARNING = datetime.timedelta(days=30)
# GnuPG, without its configuration, agent, key servers or keyring; no compression: a resumé's
# formats are compressed already, and deflating the rest would cost more time than it saves.
GPG = (
    "gpg",
    *"--batch --no-tty --quiet --no-options --no-autostart --no-auto-key-retrieve --compress-algo none".split(),
)
GPG_TIMEOUT_SECONDS = 60


class KeyRefused(Exception):
    """A configured OpenPGP key cannot be used; start-up must stop with this line."""


def _parse(item: str, position: int) -> list[pysequoia.Cert]:
    """The certificates in one FORMS_PGP_KEYS item (an armored block or a file path); secret key material
    is refused outright: the whole point is that the server holds nothing that can decrypt."""
    armored = item.lstrip().startswith(ARMORED_PREFIX)
    where = f"entry {position} (armored key)" if armored else f"entry {item}"
    try:
        data = item.encode() if armored else Path(item).read_bytes()
        tags = [packet.tag for packet in PacketPile.from_bytes(data)]
        certs = pysequoia.Cert.split_bytes(data)
    except Exception as exc:  # pysequoia raises plain Exception subclasses
        raise KeyRefused(f"{where} is not a readable OpenPGP certificate") from exc
    if any(tag in SECRET_TAGS for tag in tags):
        raise KeyRefused(f"{where} contains secret key material: configure public keys only")
    if not certs:
        raise KeyRefused(f"{where} holds no OpenPGP certificate")
    return certs


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _expired(cert: pysequoia.Cert, now: datetime.datetime) -> bool:
    return cert.expiration is not None and cert.expiration <= now


def refusal(cert: pysequoia.Cert, now: datetime.datetime) -> str | None:
    """Why `cert` can never be used to encrypt, or None when it can (expiry is the Keyring's business).

    Proved by encrypting a probe to it with gpg, as every submission is: a key gpg cannot use (no encryption
    subkey, or an algorithm or key version newer than it knows, which pysequoia would accept) stops start-up
    rather than every submission. gpg refuses an expired key too, so that one is not probed.
    """
    if cert.is_revoked:
        return "is revoked"
    if _expired(cert, now):
        return None
    try:
        encrypt(b"probe", [cert])
    except GnuPGFailed as failed:
        return f"cannot be encrypted to ({failed})"
    return None


class NoUsableKey(Exception):
    """Every configured OpenPGP key has expired: the association's mail cannot be encrypted, so no
    submission may be accepted (sending it in clear would break the promise); the view answers 503."""


class GnuPGFailed(Exception):
    """gpg could not encrypt: as with NoUsableKey, nothing is accepted (503) and the health check is red."""


def _fingerprint(cert: pysequoia.Cert) -> str:
    return cert.fingerprint.upper()


def expired_line(cert: pysequoia.Cert) -> str:
    """What an expired key means for the operator, in one line naming it."""
    return (
        f"OpenPGP key {_fingerprint(cert)} expired on {cert.expiration:%Y-%m-%d}: nothing is encrypted to it "
        "any more; put its renewed public key in FORMS_PGP_KEYS (or remove it) and restart"
    )


class Keyring:
    """The association's vetted certificates; which of them may be encrypted to is decided at each use: a key
    that expires while the service runs is left out at once (pysequoia would still encrypt to it), logged at
    ERROR once per process; when none remains, submissions are refused rather than sent in clear."""

    def __init__(self, certs: Sequence[pysequoia.Cert]):
        self.certs = tuple(certs)
        self._reported: set[str] = set()

    def _log_once(self, level: int, line: str) -> None:
        """Log a key's state once per process: health checks ask every minute."""
        if line not in self._reported:
            self._reported.add(line)
            log.log(level, line)

    def expired(self, now: datetime.datetime | None = None) -> list[pysequoia.Cert]:
        now = now or _utcnow()
        return [cert for cert in self.certs if _expired(cert, now)]

    def usable(self, now: datetime.datetime | None = None) -> list[pysequoia.Cert]:
        """The keys to encrypt to now; raises NoUsableKey when every one has expired."""
        now = now or _utcnow()
        for cert in self.expired(now):
            self._log_once(logging.ERROR, expired_line(cert))
        usable = [cert for cert in self.certs if not _expired(cert, now)]
        if not usable:
            raise NoUsableKey("every OpenPGP key in FORMS_PGP_KEYS has expired")
        return usable

    def refuse_expired(self) -> None:
        """For the service's start-up only (see startup.py): an expired key stops it, naming the key."""
        for cert in self.expired():
            expired = f"expired on {cert.expiration:%Y-%m-%d}: remove it or configure a valid key"
            raise ConfigError("PGP_KEYS", f"key {_fingerprint(cert)} {expired}")

    def notices(self, now: datetime.datetime | None = None) -> tuple[list[str], list[str]]:
        """(expired, expiring within EXPIRY_WARNING) as lines for the operator: the health check's and
        `spool check`'s."""
        now = now or _utcnow()
        expiring = [
            f"OpenPGP key {_fingerprint(cert)} expires on {cert.expiration:%Y-%m-%d}: renew it"
            for cert in self.certs
            if cert.expiration is not None and now < cert.expiration < now + EXPIRY_WARNING
        ]
        for line in expiring:
            self._log_once(logging.WARNING, line)
        return [expired_line(cert) for cert in self.expired(now)], expiring

    def probe(self) -> bytes:
        """A few bytes encrypted to the usable keys, the way every submission is (for the health check)."""
        return encrypt(b"probe", self.usable())


def load_recipients(setting: str | Sequence[str]) -> Keyring:
    """Parse and vet FORMS_PGP_KEYS; raises KeyRefused naming the first key that can never be used. An expired
    key is kept, for the Keyring to leave out at each use, so the operator commands still run with it (the
    service's own start-up refuses it: startup.py); one expiring soon is logged."""
    items = [setting] if isinstance(setting, str) else setting  # one armored block or path is fine too
    certs = [cert for position, item in enumerate(items, 1) for cert in _parse(item, position)]
    if not certs:
        raise KeyRefused("is an empty list: leave it unset to rely on the symmetric spool key alone")
    if not shutil.which(GPG[0]):  # nothing is accepted without it, and no key could be vetted
        raise KeyRefused("needs GnuPG's gpg, which is not installed (Debian: apt-get install gnupg)")
    now = _utcnow()
    for cert in certs:
        reason = refusal(cert, now)
        if reason:
            raise KeyRefused(f"key {_fingerprint(cert)} {reason}: remove it or configure a valid key")
    keyring = Keyring(certs)
    keyring.notices(now)  # logs keys expiring soon
    return keyring


def recipients_from_config(config: Mapping) -> Keyring | None:
    """The vetted FORMS_PGP_KEYS as a Keyring, or None when OpenPGP is not configured."""
    setting = config.get("PGP_KEYS")
    if not setting:
        return None
    try:
        return load_recipients(setting)
    except KeyRefused as refused:
        raise ConfigError("PGP_KEYS", str(refused)) from refused


def encrypt_mime(
    headers: Sequence[tuple[str, str]], body: mime.Entity, recipients: Sequence[pysequoia.Cert], generic_subject: str
) -> bytes:
    """The message of `headers` and `body` wrapped whole in RFC 3156 OpenPGP/MIME: the inner entity is marked
    protected-headers="v1", so mail clients show its real Subject; the outer message only carries the routing
    headers (OUTER_HEADERS) and `generic_subject`. gpg writes the ASCII armor (its line ends made CRLF)."""
    inner = mime.message(headers, mime.with_parameter(body, 'protected-headers="v1"'))
    encrypted = [
        mime.seven_bit("application/pgp-encrypted", "PGP/MIME version identification", b"Version: 1\n"),
        mime.seven_bit(
            'application/octet-stream; name="encrypted.asc"', "OpenPGP encrypted message", encrypt(inner, recipients)
        ),
    ]
    envelope = mime.with_parameter(mime.multipart("encrypted", encrypted), 'protocol="application/pgp-encrypted"')
    outer_headers = [(name, value) for name, value in headers if name in OUTER_HEADERS]
    return mime.message([*outer_headers, ("Subject", mime.header_value("Subject", generic_subject))], envelope)


def encrypt(plaintext: bytes, recipients: Sequence[pysequoia.Cert]) -> bytes:
    """`plaintext` encrypted to `recipients` by GnuPG, ASCII-armored; GnuPGFailed if gpg fails or is missing.
    Each key goes in a file in memory of its own (--recipient-file: nothing is imported). A gpg that does not
    finish within GPG_TIMEOUT_SECONDS, fed or not, is killed: a submission must not hang."""
    with tempfile.TemporaryDirectory(prefix="forms-gnupg-") as home, contextlib.ExitStack() as keys:
        key_files = [keys.enter_context(_key_file(cert)) for cert in recipients]
        command = [*GPG, "--homedir", home, "--armor", "--encrypt"]
        for key_file in key_files:
            command += ["--recipient-file", f"/proc/self/fd/{key_file.fileno()}"]
        try:
            gpg = subprocess.run(
                command,
                input=plaintext,
                capture_output=True,
                timeout=GPG_TIMEOUT_SECONDS,
                pass_fds=[key_file.fileno() for key_file in key_files],
                check=False,
            )
        except OSError as error:
            raise GnuPGFailed(f"gpg cannot be run ({error.strerror})") from error
        except subprocess.TimeoutExpired:
            raise GnuPGFailed(f"gpg did not finish within {GPG_TIMEOUT_SECONDS} s") from None
    if gpg.returncode:
        message = gpg.stderr.decode(errors="replace").strip().splitlines()
        raise GnuPGFailed(f"gpg exited with status {gpg.returncode}: {message[-1] if message else 'no message'}")
    return gpg.stdout


def _key_file(cert: pysequoia.Cert) -> BinaryIO:
    """`cert`, armored, in an anonymous file in memory (Linux's memfd, gone when closed) for gpg's
    --recipient-file."""
    key_file = open(os.memfd_create("forms-openpgp-key", os.MFD_CLOEXEC), "w+b")
    key_file.write(str(cert).encode())
    key_file.flush()
    return key_file

"""OpenPGP/MIME (RFC 3156) encryption of emails to the association's public keys.

The only module that touches pysequoia. FORMS_PGP_KEYS lists the public
certificates of everyone who may read submissions, as a JSON list (parsed
by Flask's from_prefixed_env) whose items are each either a path to a key
file (armored or binary, possibly holding several certificates) or an
armored public key block itself. Every
email to the association is encrypted to all of them, so the server keeps
no key that can read what it spools or sends.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

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


class KeyRefused(Exception):
    """A configured OpenPGP key cannot be used; start-up must stop with this line."""


def _parse(item: str, position: int) -> list[pysequoia.Cert]:
    """The certificates in one FORMS_PGP_KEYS item (an armored block or a file path).

    Secret key material is refused outright: the whole point is that the
    server holds nothing that can decrypt.
    """
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


def refusal(cert: pysequoia.Cert, now: datetime.datetime) -> str | None:
    """Why `cert` must not be used to encrypt at `now`, or None when it is fine.

    pysequoia itself would encrypt to an expired or revoked certificate, so
    both are checked here before the probe for an encryption-capable subkey.
    """
    expiration = cert.expiration
    if cert.is_revoked:
        return "is revoked"
    if expiration is not None and expiration <= now:
        return f"expired on {expiration:%Y-%m-%d}"
    try:
        pysequoia.encrypt(b"probe", [cert])
    except Exception:  # pysequoia reports "no suitable encryption subkey" as RuntimeError
        return "has no valid encryption-capable subkey"
    return None


def load_recipients(setting: str | Sequence[str], now: datetime.datetime | None = None) -> list[pysequoia.Cert]:
    """Parse and vet FORMS_PGP_KEYS; raises KeyRefused naming the first bad key.

    Keys are vetted once, here: encrypting later never fails because of a
    key, and a key expiring soon is logged so the operator can renew it.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    items = [setting] if isinstance(setting, str) else setting  # one armored block or path is fine too
    certs = [cert for position, item in enumerate(items, 1) for cert in _parse(item, position)]
    if not certs:
        raise KeyRefused("is an empty list: leave it unset to rely on the symmetric spool key alone")
    for cert in certs:
        reason = refusal(cert, now)
        if reason:
            raise KeyRefused(f"key {cert.fingerprint.upper()} {reason}: remove it or configure a valid key")
        if cert.expiration is not None and cert.expiration - now < EXPIRY_WARNING:
            log.warning("OpenPGP key %s expires on %s: renew it", cert.fingerprint.upper(), f"{cert.expiration:%Y-%m-%d}")
    return certs


def recipients_from_config(config: Mapping) -> list[pysequoia.Cert] | None:
    """The vetted FORMS_PGP_KEYS certificates, or None when OpenPGP is not configured."""
    setting = config.get("PGP_KEYS")
    if not setting:
        return None
    try:
        return load_recipients(setting)
    except KeyRefused as refused:
        raise ConfigError("PGP_KEYS", str(refused)) from refused


def encrypt_mime(headers: Sequence[tuple[str, str]], body: mime.Entity, recipients: Sequence[pysequoia.Cert],
                 generic_subject: str) -> bytes:
    """The message of `headers` and `body` wrapped whole in RFC 3156 OpenPGP/MIME.

    The inner entity is marked protected-headers="v1", so mail clients show
    its real Subject; the outer message only carries the routing headers
    (OUTER_HEADERS) and `generic_subject`. Written with mime.py from the
    composed parts, so nothing is parsed back.
    """
    inner = mime.message(headers, mime.with_parameter(body, 'protected-headers="v1"'))
    armored = pysequoia.encrypt(inner, list(recipients)).decode("ascii")
    outer_headers = [(name, value) for name, value in headers if name in OUTER_HEADERS]
    envelope = mime.with_parameter(mime.multipart("encrypted", [
        mime.seven_bit("application/pgp-encrypted", "PGP/MIME version identification", "Version: 1\n"),
        mime.seven_bit('application/octet-stream; name="encrypted.asc"', "OpenPGP encrypted message", armored),
    ]), 'protocol="application/pgp-encrypted"')
    return mime.message([*outer_headers, ("Subject", mime.header_value("Subject", generic_subject))], envelope)

"""OpenPGP/MIME (RFC 3156) encryption of emails to the association's public keys.

The only module that touches pysequoia (which reads and vets the keys) and
GnuPG (which encrypts, as a stream). FORMS_PGP_KEYS lists the public
certificates of everyone who may read submissions, as a JSON list (parsed
by Flask's from_prefixed_env) whose items are each either a path to a key
file (armored or binary, possibly holding several certificates) or an
armored public key block itself. Every
email to the association is encrypted to all of them, so the server keeps
no key that can read what it spools or sends.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import logging
import mmap
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    "--batch",
    "--no-tty",
    "--quiet",
    "--no-options",
    "--no-autostart",
    "--no-auto-key-retrieve",
    "--compress-algo",
    "none",
)
GPG_TIMEOUT_SECONDS = 60
# RFC 9580 6.2: the armor header line, an empty line (no armor headers), base64 in lines of 64,
# the checksum line ("=" and the CRC24 in base64), the tail line.
ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----\r\n\r\n"
ARMOR_LINE = 64
CHECKSUM_LINE = 7
ARMOR_END = b"-----END PGP MESSAGE-----\r\n"
CRC24_INIT = 0xB704CE  # RFC 9580 6.1.1
CRC24_POLY = 0x1864CFB


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


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _expired(cert: pysequoia.Cert, now: datetime.datetime) -> bool:
    return cert.expiration is not None and cert.expiration <= now


def refusal(cert: pysequoia.Cert, now: datetime.datetime) -> str | None:
    """Why `cert` can never be used to encrypt, or None when it can (expiry is the Keyring's business).

    Proved by encrypting a probe to it with gpg, as every submission is: a key
    gpg cannot use (no encryption subkey, or an algorithm or key version newer
    than it knows, which pysequoia would accept) stops start-up, rather than
    making every submission fail. gpg refuses an expired key too, which the
    Keyring leaves out at each use instead, so that one is not probed. A
    revoked key is named as such before the probe.
    """
    if cert.is_revoked:
        return "is revoked"
    if _expired(cert, now):
        return None
    try:
        encrypt([b"probe"], [cert])
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


def expiring_line(cert: pysequoia.Cert) -> str:
    return f"OpenPGP key {_fingerprint(cert)} expires on {cert.expiration:%Y-%m-%d}: renew it"


class Keyring:
    """The association's vetted certificates; which of them may be encrypted to is decided at each use.

    A key that expires while the service runs is left out at once (pysequoia
    would still encrypt to it): mail goes to the remaining readers, and when
    none remains, submissions are refused rather than sent in clear. Each
    expiry is logged at ERROR once per process, naming the key.
    """

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

    def expiring(self, now: datetime.datetime | None = None) -> list[pysequoia.Cert]:
        """Keys still valid that expire within EXPIRY_WARNING: the operator must renew them."""
        now = now or _utcnow()
        return [
            cert for cert in self.certs if cert.expiration is not None and now < cert.expiration < now + EXPIRY_WARNING
        ]

    def usable(self, now: datetime.datetime | None = None) -> list[pysequoia.Cert]:
        """The keys to encrypt to now; raises NoUsableKey when every one has expired."""
        now = now or _utcnow()
        for cert in self.expired(now):
            self._log_once(logging.ERROR, expired_line(cert))
        usable = [cert for cert in self.certs if not _expired(cert, now)]
        if not usable:
            raise NoUsableKey("every OpenPGP key in FORMS_PGP_KEYS has expired")
        return usable

    def refuse_expired(self, now: datetime.datetime | None = None) -> None:
        """For the service's start-up only (see startup.py): an expired key stops it, naming the key."""
        for cert in self.expired(now):
            raise KeyRefused(
                f"key {_fingerprint(cert)} expired on {cert.expiration:%Y-%m-%d}: remove it or configure a valid key"
            )

    def notices(self, now: datetime.datetime | None = None) -> tuple[list[str], list[str]]:
        """(expired, expiring soon) as lines for the operator: the health check's and `spool check`'s."""
        now = now or _utcnow()
        expiring = [expiring_line(cert) for cert in self.expiring(now)]
        for line in expiring:
            self._log_once(logging.WARNING, line)
        return [expired_line(cert) for cert in self.expired(now)], expiring

    def probe(self) -> bytes:
        """A few bytes encrypted to the usable keys, the way every submission is (for the health check)."""
        return bytes(encrypt([b"probe"], self.usable()))


def load_recipients(setting: str | Sequence[str], now: datetime.datetime | None = None) -> Keyring:
    """Parse and vet FORMS_PGP_KEYS; raises KeyRefused naming the first key that can never be used.

    An expired key is kept, for the Keyring to leave out at each use: so the
    operator commands still run with it (`spool check` reports it), while the
    service's own start-up refuses it (startup.py). A key expiring soon is
    logged so the operator can renew it; the health check says so each time.
    """
    items = [setting] if isinstance(setting, str) else setting  # one armored block or path is fine too
    certs = [cert for position, item in enumerate(items, 1) for cert in _parse(item, position)]
    if not certs:
        raise KeyRefused("is an empty list: leave it unset to rely on the symmetric spool key alone")
    require_gnupg()
    now = now or _utcnow()
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
) -> mime.Message:
    """The message of `headers` and `body` wrapped whole in RFC 3156 OpenPGP/MIME.

    The inner entity is marked protected-headers="v1", so mail clients show
    its real Subject; the outer message only carries the routing headers
    (OUTER_HEADERS) and `generic_subject`. Written with mime.py from the
    composed parts, so nothing is parsed back. The inner message is encrypted
    as it is written, and the ciphertext's ASCII armor is written a block at a
    time by whoever reads the message (the spool, as it seals it).
    """
    inner = mime.message(headers, mime.with_parameter(body, 'protected-headers="v1"'))
    outer_headers = [(name, value) for name, value in headers if name in OUTER_HEADERS]
    envelope = mime.with_parameter(
        mime.multipart(
            "encrypted",
            [
                mime.seven_bit("application/pgp-encrypted", "PGP/MIME version identification", b"Version: 1\n"),
                mime.seven_bit_lines(
                    'application/octet-stream; name="encrypted.asc"',
                    "OpenPGP encrypted message",
                    [Armor(encrypt(inner, recipients))],
                ),
            ],
        ),
        'protocol="application/pgp-encrypted"',
    )
    return mime.message([*outer_headers, ("Subject", mime.header_value("Subject", generic_subject))], envelope)


def encrypt(plaintext: Iterable[bytes], recipients: Sequence[pysequoia.Cert]) -> mmap.mmap:
    """`plaintext`, given a piece at a time, encrypted to `recipients` by GnuPG: a binary OpenPGP
    message in memory, mapped read-only (unmapped with the last reference to it).

    Streamed, so that a resumé is never held whole a second time. pysequoia
    cannot stream in memory: `encrypt` takes and returns whole `bytes`, and
    `encrypt_file` buffers 8 MB of its own; both hold the GIL throughout.
    gpg reads the pieces from a pipe and writes into a file in memory (memfd,
    never on disk). Each key is handed over in a file of its own
    (--recipient-file: nothing is imported), and the keys' validity is the
    Keyring's decision. Raises GnuPGFailed if gpg fails or is missing.
    """
    with (
        tempfile.TemporaryDirectory(prefix="forms-gnupg-") as home,
        _memory_file("forms-openpgp") as ciphertext,
        _memory_file("forms-gnupg-stderr") as errors,
        contextlib.ExitStack() as keys,
    ):
        key_files = [keys.enter_context(_key_file(cert)) for cert in recipients]
        command = [*GPG, "--homedir", home, "--encrypt"]
        for key_file in key_files:
            command += ["--recipient-file", f"/proc/self/fd/{key_file.fileno()}"]
        try:
            gpg = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=ciphertext,
                stderr=errors,
                pass_fds=[key_file.fileno() for key_file in key_files],
            )
        except OSError as error:
            raise GnuPGFailed(f"gpg cannot be run ({error.strerror})") from error
        # A submission must not hang on gpg, neither while it is fed nor after: killed past the timeout.
        watchdog = threading.Timer(GPG_TIMEOUT_SECONDS, gpg.kill)
        watchdog.start()
        try:
            for piece in plaintext:
                gpg.stdin.write(piece)
        except BrokenPipeError:
            pass  # gpg stopped reading (or was killed): its status and message say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                gpg.stdin.close()
            gpg.wait()
            watchdog.cancel()
        if gpg.returncode:
            errors.seek(0)
            message = errors.read(1000).decode(errors="replace").strip().splitlines()
            raise GnuPGFailed(f"gpg exited with status {gpg.returncode}: {message[-1] if message else 'no message'}")
        return mmap.mmap(ciphertext.fileno(), 0, prot=mmap.PROT_READ)


def _key_file(cert: pysequoia.Cert) -> BinaryIO:
    """`cert`, armored, in a file in memory for gpg's --recipient-file."""
    key_file = _memory_file("forms-openpgp-key")
    key_file.write(str(cert).encode())
    key_file.flush()
    return key_file


def _memory_file(name: str) -> BinaryIO:
    """An anonymous file in memory (Linux's memfd), gone when closed; `name` shows in /proc only."""
    return open(os.memfd_create(name, os.MFD_CLOEXEC), "w+b")


def require_gnupg() -> None:
    """Raise KeyRefused unless gpg is installed: with OpenPGP configured, nothing is accepted without it
    (and no key could be vetted)."""
    if not shutil.which(GPG[0]):
        raise KeyRefused("needs GnuPG's gpg, which is not installed (Debian: apt-get install gnupg)")


class Armor(mime.Base64Lines):
    """A binary OpenPGP message as RFC 9580 ASCII armor in CRLF lines, written a block at a time
    as it is read, so the 9 MB armor of a resumé is never held whole.

    With the CRC24 checksum line, which RFC 9580 (6.1) says to write only
    when interoperability needs it: it does, GnuPG 2.2 reports a message
    whose length is a multiple of 3 armored without it as invalid ("invalid
    packet (ctb=10)", exit status 2), though it decrypts it.
    """

    def __init__(self, ciphertext: mmap.mmap | bytes):
        super().__init__(ciphertext, ARMOR_LINE)
        # Here, not as the armor is read: the spool reads it inside its write transaction, which
        # every other worker's submission waits for.
        self._crc = functools.reduce(_crc24_extend, self.blocks(), CRC24_INIT)

    def __len__(self) -> int:
        return len(ARMOR_BEGIN) + super().__len__() + CHECKSUM_LINE + len(ARMOR_END)

    def __iter__(self) -> Iterator[bytes]:
        yield ARMOR_BEGIN
        yield from super().__iter__()
        yield b"=" + base64.b64encode(self._crc.to_bytes(3, "big")) + mime.CRLF + ARMOR_END


def _crc24_extend(crc: int, block: memoryview) -> int:
    """The CRC24 of what `crc` is the CRC24 of, followed by `block`.

    Python would take a second per resumé to compute it byte by byte; Sequoia
    computes each block's in its armor (pysequoia.armor), and CRCs being linear,
    they combine: `crc` (less the initial value, which the block's own CRC
    includes) advanced over the block's length in zero bytes, plus the block's.
    """
    armored = pysequoia.armor(bytes(block), pysequoia.ArmorKind.Message)
    checksum = next(line for line in armored.splitlines() if line.startswith("="))
    block_crc = int.from_bytes(base64.b64decode(checksum[1:]), "big")
    return _gf2_apply(_zero_bytes(len(block)), crc ^ CRC24_INIT) ^ block_crc


@functools.cache
def _zero_bytes(count: int) -> tuple[int, ...]:
    """The CRC24 register's change over `count` zero bytes, a linear map: the images of its 24 bits."""
    one_bit = tuple(_crc24_shift(1 << bit) for bit in range(24))
    result, power, bits = tuple(1 << bit for bit in range(24)), one_bit, 8 * count
    while bits:  # square and multiply: a few dozen compositions for a block of any size
        if bits & 1:
            result = tuple(_gf2_apply(power, image) for image in result)
        power = tuple(_gf2_apply(power, image) for image in power)
        bits >>= 1
    return result


def _crc24_shift(register: int) -> int:
    """The register after one zero bit."""
    register <<= 1
    return register ^ CRC24_POLY if register & 0x1000000 else register


def _gf2_apply(images: tuple[int, ...], vector: int) -> int:
    """The linear map given by the images of the 24 bits, applied to `vector`."""
    result = 0
    for image in images:
        if vector & 1:
            result ^= image
        vector >>= 1
    return result

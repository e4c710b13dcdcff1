"""Symmetric sealing of everything the spool stores (Fernet / MultiFernet).

Keys come from FORMS_SPOOL_KEY (one key, or a JSON list whose first key is
the current one) or from the file FORMS_SPOOL_KEY_FILE names (one key a
line). They live apart from FORMS_DATA_DIR, so that one copy of the data
folder opens nothing: the service never makes a key on its own (only the
dev server does, for `make run`), and a key file inside the data folder, or
one that group or others could read, is refused.
"""

from __future__ import annotations

import base64
import itertools
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .config import ConfigError

# The Fernet token format (cryptography's fernet.py, the Fernet specification), for seal_into.
FERNET_VERSION = b"\x80"
IV_BYTES = 16  # also AES's block
HMAC_BYTES = 32
HEADER_BYTES = len(FERNET_VERSION) + 8 + IV_BYTES  # version, time, IV
SEAL_CHUNK = 48 * 1024  # what seal_into encrypts and encodes at once: a multiple of 3 and of 16
UNSEAL_CHUNK = 64 * 1024  # base64 characters unseal_from decodes at once: a multiple of 4
FINGERPRINT_TEXT = b"forms_service spool key fingerprint"  # what Sealer.fingerprints signs
OLD_KEY_FILE_NAME = "spool.key"  # where versions before issue 12 made a key, inside FORMS_DATA_DIR: never read


class SealingError(Exception):
    """The sealing keys are missing, malformed or unsafely stored; start-up must stop.

    The message is a predicate ("has mode 0644: ...") for the caller to put
    after the name of the setting or file it concerns.
    """


def _fernets(keys: Sequence[bytes]) -> MultiFernet:
    """Build a MultiFernet: the first key seals, every key opens."""
    if not keys:
        raise SealingError("holds no key")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise SealingError(
            'holds something that is not a Fernet key (make one with `python -c "from '
            'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
        ) from exc


def keys_from_setting(value: str | Sequence[str]) -> list[bytes]:
    """FORMS_SPOOL_KEY as keys: one key, or a list (JSON, parsed by from_prefixed_env)."""
    return [key.strip().encode() for key in ([value] if isinstance(value, str) else value)]


class Keys(NamedTuple):
    """The key that seals now, and every known key (to open), as Fernet and decoded."""

    current: bytes
    fernet: MultiFernet
    raw: tuple[bytes, ...]


def _key_set(keys: Sequence[bytes]) -> Keys:
    fernet = _fernets(keys)  # refuses an empty list or a malformed key first
    return Keys(keys[0], fernet, tuple(base64.urlsafe_b64decode(key) for key in keys))


class Sealer:
    """Seals and opens spool blobs (Fernet tokens) with the current key; older keys still open."""

    def __init__(self, keys: Sequence[bytes]):
        self._key_set = _key_set(keys)

    def _keys(self) -> Keys:
        """The keys to use now."""
        return self._key_set

    def seal(self, data: bytes) -> bytes:
        """Encrypt and authenticate `data` with the current key."""
        return self._keys().fernet.encrypt(data)

    def seal_into(self, parts: Sequence[bytes | Iterable[bytes]], write: Callable[[bytes], object]) -> None:
        """Seal the parts, joined, as `seal` would, handing the token to `write` a piece at a time.

        A part is bytes-like, or an iterable of bytes-like pieces (mime.Message,
        whose attachment is encoded only as it is read here).

        The same Fernet token (Fernet opens it: version, time, IV, AES-CBC
        ciphertext, HMAC-SHA256, in URL-safe base64), made with the same
        primitives, but never held whole: Fernet.encrypt holds the padded
        plaintext, the ciphertext, the token and its base64 at once, about
        five copies of a resumé. sealed_size(len) says how long it will be.
        """
        key = base64.urlsafe_b64decode(self._keys().current)
        iv = os.urandom(IV_BYTES)
        header = FERNET_VERSION + struct.pack(">Q", int(time.time())) + iv  # HEADER_BYTES
        signer = _hmac(key)
        padder = padding.PKCS7(algorithms.AES.block_size).padder()
        encryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).encryptor()
        encoder = _Base64Writer(write)

        def emit(piece: bytes) -> None:
            signer.update(piece)
            encoder.write(piece)

        emit(header)
        for part in parts:
            for piece in _pieces(part):
                emit(encryptor.update(padder.update(piece)))
        emit(encryptor.update(padder.finalize()) + encryptor.finalize())
        encoder.write(signer.finalize())
        encoder.close()

    def unseal(self, sealed: bytes) -> bytes:
        """Open a blob sealed with any known key; raises InvalidToken otherwise."""
        return self._keys().fernet.decrypt(sealed)

    def unseal_from(self, token: Readable) -> bytearray:
        """Open a token read a piece at a time (a spool row's blob), as `unseal` would; InvalidToken otherwise.

        Fernet.decrypt holds the token, its decoded bytes, a copy to sign,
        the ciphertext and the padded and unpadded plaintext at once: a
        resumé six times. Here the HMAC is checked over the pieces first
        (with each known key, as MultiFernet does), then the pieces are
        decrypted into one buffer the size of the plaintext.
        """
        key, header, signed = self._signer(token)
        decrypt = _decrypting(key, header[-IV_BYTES:])
        plain, position = bytearray(signed - HEADER_BYTES), 0
        # chain, not a list: a list would hold every decoded piece, the ciphertext whole, beside `plain`.
        for piece in itertools.chain(_raw_range(token, HEADER_BYTES, signed), [None]):
            chunk = decrypt(piece)
            plain[position : position + len(chunk)] = chunk
            position += len(chunk)
        del plain[position:]  # the padding, trimmed in place
        return plain

    def opens(self, token: Readable) -> bool:
        """Whether a known key signed the token, read a piece at a time: whether `unseal_from` opens it.

        Only the HMAC is computed, nothing is decrypted. A token signed with
        one of our keys was sealed by this code, which pads correctly, so the
        signature alone answers; and without a key nobody can sign one.
        """
        try:
            self._signer(token)
        except InvalidToken:
            return False
        return True

    def _signer(self, token: Readable) -> tuple[bytes, bytes, int]:
        """(the known key that signed the token, its header, how many bytes are signed); InvalidToken if none did."""
        header, signed, mac = _token_parts(token)
        key = next((key for key in self._keys().raw if _signed_by(key, token, signed, mac)), None)
        if key is None:
            raise InvalidToken
        return key, header, signed

    def opening(self, token: Readable, separator: bytes) -> Opening:
        """Open a token to be read a piece at a time, whose plaintext is a head ending with `separator`
        (a spool row: its envelope line), then a body; InvalidToken if no known key signed it or the
        plaintext holds no separator.

        The head is decrypted in the pass that checks the signature, so it is
        authenticated before anyone acts on it; the body is only decrypted as
        the Opening is iterated, and authenticated again then (see Opening).
        """
        header, signed, mac = _token_parts(token)
        for key in self._keys().raw:
            head = _signed_head(key, token, header, signed, mac, separator)
            if head is not None:
                return Opening(token, key, signed, mac, head, _plaintext_size(key, token, signed) - len(head))
        raise InvalidToken

    def fingerprints(self) -> frozenset[str]:
        """A name for each known key that tells nothing of it (HMAC of a fixed text under the key),
        so that a record of which keys opened what can be kept beside the sealed rows."""
        names = set()
        for key in self._keys().raw:
            signer = _hmac(key)
            signer.update(FINGERPRINT_TEXT)
            names.add(signer.finalize()[:16].hex())
        return frozenset(names)

    def reseal(self, sealed: bytes) -> bytes:
        """Re-encrypt a blob with the current key, so older keys can be retired."""
        return self._keys().fernet.rotate(sealed)


class TokenChanged(Exception):
    """A token read again does not match the one first authenticated: it was rewritten meanwhile
    (`spool rotate-key`) or altered. What was read of it must not be used; read it anew later."""


class Opening:
    """A token's body, decrypted a piece at a time as it is iterated (Sealer.opening), so it is never held whole.

    len() is the body's exact length, learnt without decrypting it (from the
    padding of the last block), for SMTP's SIZE. Each iteration reads the
    token again, computing its HMAC over what it actually reads, and raises
    TokenChanged instead of ending if that is not the signature first
    checked: a reader that acts only once the iteration ends (DATA's end
    marker) acts only on what was authenticated, even if the token was
    rewritten between the passes. Pieces before that are unauthenticated.
    """

    def __init__(self, token: Readable, key: bytes, signed: int, mac: bytes, head: bytes, length: int):
        self._token, self._key, self._signed, self._mac = token, key, signed, mac
        self.head, self._length = head, length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from _skipped(len(self.head), self._plaintext())
        except InvalidToken:  # malformed base64 or padding: signed by our key, so rewritten since
            raise TokenChanged from None

    def _plaintext(self) -> Iterator[bytes]:
        """The whole plaintext in pieces, its last piece only once the HMAC of what was read is checked."""
        signer = _hmac(self._key)
        header = _raw_bytes(self._token, 0, HEADER_BYTES)
        signer.update(header)
        decrypt = _decrypting(self._key, header[-IV_BYTES:])
        for piece in _raw_range(self._token, HEADER_BYTES, self._signed):
            signer.update(piece)
            yield decrypt(piece)
        last = decrypt(None)
        try:
            signer.verify(self._mac)
        except InvalidSignature:
            raise TokenChanged from None
        yield last


def _skipped(count: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces without their first `count` bytes (the head, which the reader has already)."""
    for piece in pieces:
        if count:
            cut = min(count, len(piece))
            piece, count = piece[cut:], count - cut
        if piece:
            yield piece


def _decrypting(key: bytes, iv: bytes) -> Callable[[bytes | memoryview | None], bytes]:
    """AES-CBC decryption and PKCS7 unpadding as one function of a piece of ciphertext; None ends it.
    InvalidToken for bad padding: only a token signed with our key yet malformed, or rewritten."""
    decryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()

    def decrypt(piece: bytes | memoryview | None) -> bytes:
        try:
            if piece is None:
                return unpadder.update(decryptor.finalize()) + unpadder.finalize()
            return unpadder.update(decryptor.update(piece))
        except ValueError:
            raise InvalidToken from None

    return decrypt


def _pieces(part: bytes | Iterable[bytes]) -> Iterator[memoryview]:
    """A part of seal_into in pieces of at most SEAL_CHUNK, so no piece is encrypted and encoded whole."""
    for buffer in (part,) if isinstance(part, (bytes, bytearray, memoryview)) else part:
        view = memoryview(buffer)
        for start in range(0, len(view), SEAL_CHUNK):
            yield view[start : start + SEAL_CHUNK]


class Readable(Protocol):
    """What unseal_from reads a token from: sqlite3.Blob (a spool row), or any such object."""

    def __len__(self) -> int: ...
    def seek(self, offset: int, origin: int = 0) -> object: ...
    def read(self, length: int = -1) -> bytes: ...


def _raw_size(token: Readable) -> int:
    """Bytes the token decodes to, from its length and its base64 padding; InvalidToken if no Fernet token has it."""
    length = len(token)
    token.seek(max(length - 2, 0))
    size = length // 4 * 3 - token.read(2).count(b"=")
    if length % 4 or size < HEADER_BYTES + IV_BYTES + HMAC_BYTES or (size - HEADER_BYTES - HMAC_BYTES) % IV_BYTES:
        raise InvalidToken
    return size


def _raw_range(token: Readable, start: int, end: int) -> Iterator[memoryview]:
    """The decoded bytes [start, end) of a base64 token, in pieces, reading from the 4 characters holding `start`."""
    quantum = start // 3
    token.seek(quantum * 4)
    offset = quantum * 3  # where the next piece starts, decoded
    while offset < end:
        characters = token.read(UNSEAL_CHUNK)
        if not characters:
            raise InvalidToken
        try:
            piece = memoryview(base64.urlsafe_b64decode(characters))
        except ValueError:  # binascii.Error
            raise InvalidToken from None
        yield piece[max(start - offset, 0) : max(min(end - offset, len(piece)), 0)]
        offset += len(piece)


def _raw_bytes(token: Readable, start: int, end: int) -> bytes:
    return b"".join(_raw_range(token, start, end))


def _hmac(key: bytes) -> hmac.HMAC:
    """Fernet's HMAC-SHA256 under the signing half of `key` (a raw 32-byte Fernet key)."""
    return hmac.HMAC(key[:16], hashes.SHA256())


def _signed_by(key: bytes, token: Readable, signed: int, mac: bytes) -> bool:
    """Whether the HMAC of the token's first `signed` bytes under `key` is `mac` (constant-time compare)."""
    signer = _hmac(key)
    for piece in _raw_range(token, 0, signed):
        signer.update(piece)
    try:
        signer.verify(mac)
    except InvalidSignature:
        return False
    return True


def _token_parts(token: Readable) -> tuple[bytes, int, bytes]:
    """(the token's header, how many of its bytes are signed, its HMAC); InvalidToken if it is no Fernet token."""
    size = _raw_size(token)
    signed = size - HMAC_BYTES
    header, mac = _raw_bytes(token, 0, HEADER_BYTES), _raw_bytes(token, signed, size)
    if header[:1] != FERNET_VERSION:
        raise InvalidToken
    return header, signed, mac


def _signed_head(key: bytes, token: Readable, header: bytes, signed: int, mac: bytes, separator: bytes) -> bytes | None:
    """The plaintext up to its first `separator` (included) if `key` signed the token, else None; InvalidToken
    if it holds no separator. Decrypted in the HMAC's own pass, so the head is the text authenticated."""
    signer = _hmac(key)
    signer.update(header)
    decrypt, plain, end = _decrypting(key, header[-IV_BYTES:]), bytearray(), -1
    for piece in _raw_range(token, HEADER_BYTES, signed):
        signer.update(piece)
        if end < 0:  # only the pieces up to the separator are decrypted
            end = _find_end(plain, decrypt(piece), separator)
    try:
        signer.verify(mac)
    except InvalidSignature:
        return None
    if end < 0:
        end = _find_end(plain, decrypt(None), separator)
    if end < 0:
        raise InvalidToken
    return bytes(plain[:end])


def _find_end(plain: bytearray, piece: bytes, separator: bytes) -> int:
    """Add `piece` to `plain`; where the first separator in it ends, or -1."""
    start = max(len(plain) - len(separator) + 1, 0)
    plain += piece
    found = plain.find(separator, start)
    return -1 if found < 0 else found + len(separator)


def _plaintext_size(key: bytes, token: Readable, signed: int) -> int:
    """The plaintext's length, from the padding of the last block alone (CBC: the block before is its IV)."""
    last_two = _raw_bytes(token, signed - 2 * IV_BYTES, signed)
    decrypt = _decrypting(key, last_two[:IV_BYTES])
    tail = decrypt(last_two[IV_BYTES:]) + decrypt(None)  # the unpadder gives the last block only at its end
    return signed - HEADER_BYTES - IV_BYTES + len(tail)


def sealed_size(length: int) -> int:
    """The length of the Fernet token of `length` bytes: version, time, IV, padded ciphertext and HMAC, base64."""
    raw = len(FERNET_VERSION) + 8 + IV_BYTES + (length // IV_BYTES + 1) * IV_BYTES + HMAC_BYTES
    return -(-raw // 3) * 4


class _Base64Writer:
    """URL-safe base64 of what is written, handed on in pieces of whole 3-byte groups; `close` pads."""

    def __init__(self, write: Callable[[bytes], object]):
        self._write, self._pending = write, b""

    def write(self, data: bytes) -> None:
        data = self._pending + data
        whole = len(data) - len(data) % 3
        self._pending = data[whole:]
        if whole:
            self._write(base64.urlsafe_b64encode(data[:whole]))

    def close(self) -> None:
        if self._pending:
            self._write(base64.urlsafe_b64encode(self._pending))


class KeyFileSealer(Sealer):
    """A Sealer whose keys live in a 0600 file that `spool rotate-key` may replace.

    Every use first checks (one stat) whether the file was replaced, so all
    running workers seal with a new key, and open re-sealed blobs, as soon as
    the operator rotates, without a restart.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._signature = _signature(path)
        super().__init__(read_key_file(path))

    def _keys(self) -> Keys:
        signature = _signature(self.path)
        with self._lock:
            if signature != self._signature:
                self._key_set, self._signature = _key_set(read_key_file(self.path)), signature
            return self._key_set


def _signature(path: Path) -> tuple[int, int, int]:
    """Changes whenever the key file is replaced (write_key_file gives it a new inode)."""
    status = path.stat()
    return status.st_ino, status.st_mtime_ns, status.st_size


def read_key_file(path: Path) -> list[bytes]:
    """Read the keys (one a line, current first), refusing a file others can read."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SealingError(f"has mode {mode:04o}: it must be 0600 (chmod 600 {path})")
    return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def write_key_file(path: Path, keys: Sequence[bytes], *, replace: bool) -> None:
    """Write keys atomically with mode 0600; without `replace`, never overwrite.

    The file is written under a temporary name and fsynced before it gets its
    real name, so no reader ever sees a half-written or world-readable key.
    Linking (not renaming) when creating makes concurrent workers agree on the
    first key written.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.unlink(missing_ok=True)  # left by a crash of a process that had our pid
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(b"".join(key + b"\n" for key in keys))
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a new or renamed file's directory entry durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def ensure_key_file(path: Path) -> None:
    """Create a key file with a fresh key unless one exists (the dev server's convenience)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        write_key_file(path, [Fernet.generate_key()], replace=False)
    except FileExistsError:
        pass


def add_new_key(path: Path) -> None:
    """Put a fresh key first in the key file; older keys stay so blobs still open."""
    write_key_file(path, [Fernet.generate_key(), *read_key_file(path)], replace=True)


def retire_old_keys(path: Path) -> None:
    """Keep only the current key in the key file (after every blob was re-sealed)."""
    write_key_file(path, read_key_file(path)[:1], replace=True)


def key_setting(config: Mapping) -> str:
    """Which setting holds the keys: SPOOL_KEY or SPOOL_KEY_FILE (exactly one must be set).

    Unset, and the data folder holds the key file older versions made there:
    the line says so, since that key must move out rather than a new one come in.
    """
    given = [name for name in ("SPOOL_KEY", "SPOOL_KEY_FILE") if config.get(name) not in (None, "")]  # X= is unset
    if not given:
        old_key_file = Path(config["DATA_DIR"]) / OLD_KEY_FILE_NAME
        if old_key_file.exists():
            raise ConfigError(
                "SPOOL_KEY",
                f"is unset and {old_key_file}, made by an older version, holds the key: "
                "move it into FORMS_SPOOL_KEY and delete the file (deploy/README.md)",
            )
        raise ConfigError(
            "SPOOL_KEY",
            "is unset: set it to a key from `flask --app forms_service spool new-key` "
            "(or name a key file in FORMS_SPOOL_KEY_FILE), outside FORMS_DATA_DIR",
        )
    if len(given) == 2:
        raise ConfigError("SPOOL_KEY_FILE", "and FORMS_SPOOL_KEY are both set: choose one")
    return given[0]


def key_file_path(config: Mapping) -> Path:
    """FORMS_SPOOL_KEY_FILE, refused inside FORMS_DATA_DIR: a copy of that folder must open nothing."""
    path = Path(config["SPOOL_KEY_FILE"]).resolve()
    if path.is_relative_to(Path(config["DATA_DIR"]).resolve()):
        raise ConfigError(
            "SPOOL_KEY_FILE",
            "is inside FORMS_DATA_DIR: one copy of that folder would open "
            "everything; keep the key elsewhere, e.g. /etc/cocreatehumanity",
        )
    return path


def sealer_from_config(config: Mapping) -> Sealer:
    """The keys of FORMS_SPOOL_KEY or of the file FORMS_SPOOL_KEY_FILE; a bad one stops start-up."""
    name = key_setting(config)
    try:
        if name == "SPOOL_KEY":
            return Sealer(keys_from_setting(config[name]))
        return KeyFileSealer(key_file_path(config))
    except SealingError as problem:
        raise ConfigError(name, str(problem)) from problem
    except OSError as error:
        raise ConfigError(name, f"cannot be read: {error.strerror}") from error

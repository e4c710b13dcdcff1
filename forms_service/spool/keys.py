"""The spool's keys: Fernet sealing of every row, and where the keys come from: FORMS_SPOOL_KEY (one key, or
a JSON list, the current one first) or the file FORMS_SPOOL_KEY_FILE names (one key a line), never inside
FORMS_DATA_DIR (one copy of it must open nothing) nor readable by others. The service never makes a key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..config import ConfigError

FINGERPRINT_TEXT = b"forms_service spool key fingerprint"  # what Sealer.fingerprints signs


class SealingError(Exception):
    """The keys are missing, malformed or unsafely stored: start-up stops. The message is a predicate
    ("has mode 0644: ...") to put after the name of the setting or file."""


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


class Sealer:
    """Seals and opens spool rows (Fernet tokens) with the current key; older keys still open them."""

    def __init__(self, keys: Sequence[bytes]):
        self._fernet, self._keys = _fernets(keys), tuple(keys)

    def _current(self) -> tuple[MultiFernet, tuple[bytes, ...]]:
        """The keys to use now, as a MultiFernet and as given."""
        return self._fernet, self._keys

    def seal(self, data: bytes) -> bytes:
        """Encrypt and authenticate `data` with the current key."""
        return self._current()[0].encrypt(data)

    def unseal(self, token: bytes) -> bytes:
        """Authenticate and decrypt a token sealed with any known key; raises InvalidToken otherwise."""
        return self._current()[0].decrypt(token)

    def signed(self, token: bytes) -> bool:
        """Whether a known key signed the token: only its HMAC is checked, nothing is decrypted (a token
        signed with one of our keys was sealed by Fernet, which pads correctly)."""
        try:
            self._current()[0].extract_timestamp(token)
        except InvalidToken:
            return False
        return True

    def reseal(self, token: bytes) -> bytes:
        """Re-encrypt a token with the current key, so older keys can be retired."""
        return self._current()[0].rotate(token)

    def fingerprints(self) -> frozenset[str]:
        """A name for each known key that tells nothing of it (HMAC-SHA256 of a fixed text under the
        key's signing half), so that a record of which keys opened what can be kept beside the rows."""
        return frozenset(
            hmac.new(base64.urlsafe_b64decode(key)[:16], FINGERPRINT_TEXT, hashlib.sha256).digest()[:16].hex()
            for key in self._current()[1]
        )


class KeyFileSealer(Sealer):
    """A Sealer whose keys live in a 0600 file that `spool rotate-key` may replace: every use first checks
    (one stat) whether it was, so running workers follow a rotation at once, without a restart."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._signature = _signature(path)
        super().__init__(read_key_file(path))

    def _current(self) -> tuple[MultiFernet, tuple[bytes, ...]]:
        signature = _signature(self.path)
        with self._lock:
            if signature != self._signature:
                keys = read_key_file(self.path)
                self._fernet, self._keys, self._signature = _fernets(keys), tuple(keys), signature
            return self._fernet, self._keys


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
    """Write keys atomically with mode 0600 (under a temporary name, fsynced, then renamed: no reader sees a
    half-written key); without `replace`, never overwrite (linked, not renamed: concurrent workers agree on
    the first key written)."""
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
    descriptor = os.open(path.parent, os.O_RDONLY)  # the new name made durable
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
    """Which setting holds the keys: SPOOL_KEY or SPOOL_KEY_FILE (exactly one must be set)."""
    given = [name for name in ("SPOOL_KEY", "SPOOL_KEY_FILE") if config.get(name) not in (None, "")]  # X= is unset
    if not given:
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

"""Fixtures for the spool, sealing, OpenPGP and delivery tests.

Real parts only: SQLite files in tmp_path, Fernet keys, test keys made by
GnuPG in a throw-away GNUPGHOME, and (for delivery) the shared aiosmtpd
servers of tests/conftest.py.
"""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forms_service.outgoing import OutgoingMail
from forms_service.spool import Claimed, RetryPolicy, Sealer, Spool

FAST_RETRY = RetryPolicy(base_seconds=0.05, max_seconds=0.2, max_age_seconds=60)


def outgoing(marker: str, number: int = 0, body: bytes = b"") -> OutgoingMail:
    """An email whose envelope and subject carry `marker`, to look for in raw files."""
    head = f"Subject: {marker}\r\nMessage-ID: <{marker}.{number}@forms.test>\r\n\r\n".encode()
    return OutgoingMail(
        f"<{marker}.{number}@forms.test>",
        "forms@association.test",
        (f"{marker}@example.org",),
        head + (body or f"body {marker}\r\n".encode()),
    )


def opened(spool: Spool, entry: Claimed) -> OutgoingMail:
    """The email of a claimed entry, as delivery reads it."""
    return spool.message(entry)


def corrupt_outgoing_table(path) -> None:
    """Overwrite the root page of the spool's table, as a failing disk might (no connection open)."""
    with sqlite3.connect(path) as db:
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'outgoing'").fetchone()
    db.close()
    with open(path, "r+b") as spool_file:
        spool_file.seek((root - 1) * page_size)
        spool_file.write(b"\xa5" * page_size)


@pytest.fixture
def spool_key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def sealer(spool_key) -> Sealer:
    return Sealer([spool_key])


@pytest.fixture
def spool_path(tmp_path) -> Path:
    return tmp_path / "data" / "spool.sqlite3"


@pytest.fixture
def spool(spool_path, sealer) -> Spool:
    """A spool with retry delays of a fraction of a second."""
    return Spool(spool_path, sealer, FAST_RETRY)


class Clock:
    """Wall time that moves only when a test says so: leases run out and messages age without sleeping."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked_spool(spool_path, sealer, clock) -> Spool:
    """The `spool`, on the test's `clock`: for tests about time, not for a running deliverer's retries."""
    return Spool(spool_path, sealer, FAST_RETRY, clock=clock)


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run GnuPG in batch mode against the test keyring; fail loudly."""
    command = ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
    result = subprocess.run([*command, *args], input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@dataclass(frozen=True)
class PgpKeys:
    """A GnuPG home with the secret keys, and exported public key files by name."""

    home: Path
    files: dict[str, Path]

    def _listing(self, name: str) -> list[list[str]]:
        listing = gpg(self.home, "--with-colons", "--list-keys", f"{name}@keys.test").decode()
        return [line.split(":") for line in listing.splitlines()]

    def fingerprint(self, name: str) -> str:
        """The primary key's fingerprint, as start-up errors name it."""
        return next(fields[9] for fields in self._listing(name) if fields[0] == "fpr")

    def encryption_key_id(self, name: str) -> str:
        """The key id of the encryption subkey, as session key packets name it."""
        return next(fields[4] for fields in self._listing(name) if fields[0] == "sub" and "e" in fields[11])


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory) -> PgpKeys:
    """good, second (two readers), expired, expiring (in 20 days), revoked and signonly keys, made with gpg."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    for name in ("good", "second", "revoked"):
        gpg(home, "--quick-gen-key", f"{name} <{name}@keys.test>", "future-default", "default", "never")
    gpg(
        home,
        "--faked-system-time",
        "20200101T000000",
        "--quick-gen-key",
        "expired <expired@keys.test>",
        "future-default",
        "default",
        "1d",
    )
    gpg(home, "--quick-gen-key", "expiring <expiring@keys.test>", "future-default", "default", "20d")
    gpg(home, "--quick-gen-key", "signonly <signonly@keys.test>", "ed25519", "sign", "never")
    keys = PgpKeys(home, {})
    revocation = (home / "openpgp-revocs.d" / f"{keys.fingerprint('revoked')}.rev").read_bytes()
    gpg(home, "--import", stdin=revocation.replace(b":-----BEGIN", b"-----BEGIN"))
    for name in ("good", "second", "expired", "expiring", "revoked", "signonly"):
        path = home / f"{name}.asc"
        path.write_bytes(gpg(home, "--armor", "--export", f"{name}@keys.test"))
        keys.files[name] = path
    secret = home / "good-secret.asc"
    secret.write_bytes(gpg(home, "--armor", "--export-secret-keys", "good@keys.test"))
    keys.files["good-secret"] = secret
    yield keys
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)

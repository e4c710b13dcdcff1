"""A forensic reader of a copy of FORMS_DATA_DIR: what someone who also holds the spool key recovers.

It reads the files as bytes, not SQLite's view of the current state:

- every committed WAL generation, rebuilt over the main file and opened with
  sqlite3: frames are grouped by their salt (a generation's own, or one a later
  generation left behind past its end), checksums are ignored, and each commit
  frame (non-zero "database size after commit") is a database image;
- every whole Fernet token in the raw files (main file and its free pages, -wal, -shm);
- every piece of a token anywhere: Fernet is AES-CBC, so any two consecutive
  ciphertext blocks open with the key, whole token or not.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import struct
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

WAL_HEADER = 32
FRAME_HEADER = 24
BLOCK = 16
TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_-]{60,}={0,2}")
BASE64_RUN = re.compile(rb"[A-Za-z0-9_-]{64,}")
READABLE = re.compile(rb"[\x20-\x7e\t\r\n]{32,}")  # two CBC blocks of text: never chance (p < 1e-13)


@dataclass
class Recovered:
    """What the reader got out of one folder."""

    messages: list[bytes] = field(default_factory=list)  # plaintexts of whole tokens
    pieces: list[bytes] = field(default_factory=list)  # readable runs decrypted from pieces of tokens
    images: int = 0  # database images rebuilt from committed WAL generations (and the main file)

    def mentions(self, marker: bytes) -> bool:
        """True when `marker` appears in anything recovered."""
        return any(marker in text for text in (*self.messages, *self.pieces))

    def nothing(self) -> bool:
        return not self.messages and not self.pieces

    def summary(self) -> str:
        """How much was recovered, for a failing assertion (never the plaintexts themselves)."""
        return f"{len(self.messages)} messages and {len(self.pieces)} pieces from {self.images} images"


def examine(folder: Path, keys: Sequence[bytes]) -> Recovered:
    """Everything `keys` open in the spool files of `folder`."""
    files = {path.name: path.read_bytes() for path in sorted(folder.glob("spool.sqlite3*"))}
    main, wal = files.get("spool.sqlite3", b""), files.get("spool.sqlite3-wal", b"")
    fernet = MultiFernet([Fernet(key) for key in keys])
    recovered, tokens = Recovered(), set()
    for image in database_images(main, wal):
        recovered.images += 1
        tokens.update(table_tokens(image))
    for raw in files.values():
        tokens.update(TOKEN.findall(raw))
        recovered.pieces.extend(readable_pieces(raw, keys))
    for token in sorted(tokens):
        try:
            recovered.messages.append(fernet.decrypt(token))
        except InvalidToken:
            pass
    return recovered


def database_images(main: bytes, wal: bytes) -> Iterator[Path]:
    """A database file for the main file alone and for every commit of every WAL generation
    (the same temporary file, rewritten: only one image exists at a time)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.sqlite3"
        path.write_bytes(main)
        yield path
        for frames in generations(wal):
            pages: dict[int, bytes] = {}
            for number, commit_size, page in frames:
                pages[number] = page
                if commit_size:
                    write_image(path, main, pages, commit_size)
                    yield path


def generations(wal: bytes) -> list[list[tuple[int, int, bytes]]]:
    """WAL frames (page number, size after commit, page) grouped by salt, in file order."""
    if len(wal) < WAL_HEADER:
        return []
    (page_size,) = struct.unpack(">I", wal[8:12])
    size, groups = FRAME_HEADER + page_size, {}
    for offset in range(WAL_HEADER, len(wal) - size + 1, size):
        number, commit_size, salt1, salt2 = struct.unpack(">IIII", wal[offset : offset + 16])
        if number:
            groups.setdefault((salt1, salt2), []).append(
                (number, commit_size, wal[offset + FRAME_HEADER : offset + size])
            )
    return list(groups.values())


def write_image(path: Path, main: bytes, pages: dict[int, bytes], commit_size: int) -> None:
    """The main file with `pages` laid over it, cut to `commit_size` pages."""
    page_size = len(next(iter(pages.values())))
    image = bytearray(main[: commit_size * page_size].ljust(commit_size * page_size, b"\0"))
    for number, page in pages.items():
        if number <= commit_size:
            image[(number - 1) * page_size : number * page_size] = page
    path.write_bytes(bytes(image))


def table_tokens(image: Path) -> list[bytes]:
    """The sealed column of every row SQLite can read in `image` (a damaged image gives none)."""
    try:
        with closing(sqlite3.connect(f"file:{image}?immutable=1", uri=True)) as db:
            return [bytes(sealed) for (sealed,) in db.execute("SELECT sealed FROM outgoing")]
    except sqlite3.DatabaseError:
        return []


def readable_pieces(raw: bytes, keys: Sequence[bytes]) -> list[bytes]:
    """Text that opens from any run of token characters, at every base64 and block alignment."""
    found = []
    ciphers = [algorithms.AES(base64.urlsafe_b64decode(key)[16:]) for key in keys]
    for run in BASE64_RUN.findall(raw):
        for shift in range(4):
            usable = run[shift:][: (len(run) - shift) // 4 * 4]
            data = base64.urlsafe_b64decode(usable)
            for offset in range(BLOCK):
                blocks = (len(data) - offset) // BLOCK
                if blocks < 3:
                    continue
                iv, body = data[offset : offset + BLOCK], data[offset + BLOCK : offset + blocks * BLOCK]
                for cipher in ciphers:
                    decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
                    found.extend(READABLE.findall(decryptor.update(body) + decryptor.finalize()))
    return found

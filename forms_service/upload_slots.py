"""How many uploads the workers of one host work on at once (FORMS_UPLOAD_SLOTS, fewer than the workers), so
that one is always free for a request for help: a slot is a flock on a file of the data folder, which the
kernel gives back when its worker dies (README.md, "Limits")."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

SLOT_FILE = "upload-slot-{}.lock"


class UploadSlots:
    """`count` slots shared by every process that uses the same folder."""

    def __init__(self, folder: str | os.PathLike, count: int):
        self.paths = [Path(folder) / SLOT_FILE.format(number) for number in range(count)]

    def take(self) -> int | None:
        """A file descriptor whose lock is a slot (closing it gives the slot back); None if all are taken."""
        for path in self.paths:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return descriptor
        return None

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """True with a slot held for the block, False when every slot is taken."""
        descriptor = self.take()
        try:
            yield descriptor is not None
        finally:
            if descriptor is not None:
                os.close(descriptor)

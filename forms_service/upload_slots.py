"""How many uploads the workers of one host work on at once: fewer than the workers, so that
one is always free for a request for help.

A post with a file holds its worker for the check of the document (at most 1 s
of CPU, budget.py), composing, sealing and the fsync; a support request takes
milliseconds. nginx buffers every body before passing it on, so a slow client
holds no worker, and a sync worker serves one request at a time: with every
worker on an upload, a person asking for help would wait behind them. So a
post of a form with a file first takes one of FORMS_UPLOAD_SLOTS slots, shared
by every worker of every instance on the host: an exclusive lock (flock) on one
of the files `upload-slot-N.lock` in FORMS_DATA_DIR. When all are taken, the
post is answered at once, 503 with Retry-After (views.py), and the site's script
sends it again by itself: a worker never waits for a slot, since a waiting
worker is as lost to a request for help as a busy one.

A slot is its lock, held by an open file: closing it gives the slot back, and
so does the kernel when the worker dies (killed, timed out), whatever it was doing.
"""

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
        """A file descriptor whose lock is one slot (close it to give the slot back), or None
        when every slot is taken."""
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

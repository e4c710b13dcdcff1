"""Erasing delivered messages from the spool files (Spool.erase), within seconds, in a thread of its own: a
send that hangs for the whole SMTP timeout never holds it up, and several deliveries in a row cost one erase
(README.md, "Spool and delivery")."""

from __future__ import annotations

import threading
import time

from .spool import Spool

# README.md promises 10 s after a delivery: the wait, a busy spool's retries and the erase itself fit in it.
ERASE_AFTER_SECONDS = 1.0
ERASE_RETRY_SECONDS = 0.5


class Eraser:
    """Runs Spool.erase once it is due; `request` makes it due, `erase_due` runs it in the caller."""

    def __init__(self, spool: Spool):
        self.spool = spool
        self._changed = threading.Condition()
        self._due: float | None = None  # monotonic time by which to erase; None: nothing to erase
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self, within: float = ERASE_AFTER_SECONDS) -> None:
        """Have the spool erased within `within` seconds; an earlier request keeps its time."""
        due = time.monotonic() + within
        with self._changed:
            if self._due is None or due < self._due:
                self._due = due
                self._changed.notify()

    def erase_due(self) -> None:
        """Erase now, in this thread, if anything was requested (the end of a delivery pass,
        a CLI command, a stop); a busy spool is tried again by the thread soon."""
        with self._changed:
            if self._due is None:
                return
            self._due = None
        if not self.spool.erase():
            self.request(ERASE_RETRY_SECONDS)

    def start(self) -> None:
        """Run in a daemon thread (the delivery thread's companion)."""
        if self._thread and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="forms-erasure", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread, then erase what is still due: a graceful stop leaves nothing behind."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread:
            self._thread.join(timeout)
        self.erase_due()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and (self._due is None or self._due > time.monotonic()):
                    self._changed.wait(None if self._due is None else self._due - time.monotonic())
                if self._stopping:
                    return
            self.erase_due()

"""Requests in progress in this process, so that background delivery, in the same worker (one GIL, the same
cores), gives way to them: the person who pressed "send" is waiting, while the spooled emails lose nothing by
leaving a moment later (README.md, "Spool and delivery")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class Traffic:
    """Counts this process's requests in progress (through `middleware`) and waits for gaps."""

    def __init__(self, quiet_seconds: float = 0.05, patience_seconds: float = 0.25):
        self.quiet_seconds = quiet_seconds
        self.patience_seconds = patience_seconds
        self._changed = threading.Condition()
        self._active = 0
        self._last_end = float("-inf")

    def middleware(self, wsgi_app: Callable) -> Callable:
        """Wrap a WSGI app so that each request counts while the app handles it."""

        def counted(environ: dict, start_response: Callable) -> Iterable[bytes]:
            with self._changed:
                self._active += 1
            try:
                return wsgi_app(environ, start_response)
            finally:
                with self._changed:
                    self._active -= 1
                    self._last_end = time.monotonic()
                    self._changed.notify_all()

        return counted

    @property
    def active(self) -> int:
        """Requests in progress now."""
        with self._changed:
            return self._active

    def wait_for_gap(self) -> float:
        """Block until no request has run for `quiet_seconds`, or `patience_seconds` passed (so that under
        sustained load the spool still drains); the seconds waited. Without requests, it returns at once."""
        started = time.monotonic()
        deadline = started + self.patience_seconds
        with self._changed:
            while (now := time.monotonic()) < deadline:
                if self._active:
                    self._changed.wait(deadline - now)
                    continue
                quiet_for = now - self._last_end
                if quiet_for >= self.quiet_seconds:
                    break
                self._changed.wait(min(deadline - now, self.quiet_seconds - quiet_for))
        return time.monotonic() - started

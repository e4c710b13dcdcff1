"""Requests in progress in this process, so that background delivery gives way to them.

Delivery runs in the same gunicorn worker as request handling: one GIL, the
same cores. The person who pressed "send" is waiting for an answer, while the
emails are already safe in the spool and lose nothing by leaving a moment
later. So the deliverer sends when the worker is quiet, and under sustained
load still sends one message per `patience_seconds`, so the spool keeps draining.
"""

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
            self._begin()
            try:
                return wsgi_app(environ, start_response)
            finally:
                self._end()

        return counted

    @property
    def active(self) -> int:
        """Requests in progress now."""
        with self._changed:
            return self._active

    def _begin(self) -> None:
        with self._changed:
            self._active += 1

    def _end(self) -> None:
        with self._changed:
            self._active -= 1
            self._last_end = time.monotonic()
            self._changed.notify_all()

    def wait_for_gap(self) -> float:
        """Block until no request has run for `quiet_seconds`, or `patience_seconds` passed.

        Returns the seconds waited. Without requests (the CLI, tests that
        deliver by hand) it returns at once.
        """
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

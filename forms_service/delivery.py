"""Background delivery: spooled mail goes to the SMTP server from a thread of each process (every gunicorn
worker), which share the spool through leases (README.md, "Spool and delivery")."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

from cryptography.fernet import InvalidToken
from flask import Flask

from . import extensions
from .erasure import Eraser
from .outgoing import ACKNOWLEDGEMENT
from .relay import ActionRequired, PermanentRelayError, RecipientsRefused, Relay, RelayError, verified_context
from .spool import Claimed, Spool
from .traffic import Traffic

log = logging.getLogger(__name__)

BATCH_SIZE = 20  # messages claimed at once: sent over one SMTP session


def error_code(error: BaseException) -> str:
    """What may be stored and logged about a failure: relay.py's wording (reply codes, and for ActionRequired
    the reply's text with its addresses replaced), or a class name."""
    if isinstance(error, RelayError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


class Deliverer:
    """Claims due messages from the spool and hands them to the relay, in one thread."""

    def __init__(
        self,
        spool: Spool,
        open_session: Callable[[], AbstractContextManager[Relay]],  # Relay, or a stand-in with its send()
        *,
        lease_seconds: float = 300.0,
        poll_seconds: float = 5.0,
        traffic: Traffic | None = None,
    ):
        self.spool = spool
        self.traffic = traffic or Traffic()
        self.open_session = open_session
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"  # unique to this Deliverer
        self.eraser = Eraser(spool)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ------------------------------------------------------------

    def deliver_due(self) -> int:
        """Claim one batch of due messages and try each once over one SMTP session; how many were claimed.

        A message is only sent while at least half of its lease remains, so a slow server can never make two
        workers send the same message; the rest is released. Each is read and sent in a gap between this
        process's requests (traffic.py): a request's resumé is gone before it is read.
        """
        batch = self.spool.claim(self.owner, self.lease_seconds, BATCH_SIZE)
        if not batch:
            return 0
        # Leasing wrote the rows' bookkeeping (the `schedule` table, never the sealed rows): the erase
        # takes the old page versions out of the WAL, even when the mail server is down.
        self.eraser.request()
        deadline = time.monotonic() + self.lease_seconds / 2
        pending = list(batch)
        try:
            with self.open_session() as session:
                while pending and time.monotonic() < deadline and not self._stopping.is_set():
                    self.traffic.wait_for_gap()
                    self._attempt(session, pending[0])
                    pending.pop(0)
        except Exception as error:  # outside a send (session, spool) or ActionRequired: retry what is not recorded yet
            for entry in pending:
                self._failed(entry, error)
            pending = []
        self.spool.release([entry.id for entry in pending], self.owner)
        return len(batch)

    def deliver_all(self) -> int:
        """Deliver batches until nothing is due (CLI `spool retry`, tests); returns the count."""
        total = 0
        while not self._stopping.is_set() and (claimed := self.deliver_due()):
            total += claimed
        self.eraser.erase_due()  # the pass is over: nothing it delivered stays in the files
        return total

    def _attempt(self, session: Relay, entry: Claimed) -> None:
        """Read one message, authenticated whole, send it and record the outcome in the spool."""
        try:
            mail = self.spool.message(entry)
        except InvalidToken:  # no configured key opens it, or it was altered: never retried
            self.spool.dead(entry.id, "InvalidToken")
            return
        if mail is None:
            log.info(
                "spool entry %d (submission %s) is gone: delivered by an overlapping lease",
                entry.id,
                entry.submission_id,
            )
            return
        try:
            session.send(mail)
        except RecipientsRefused as refusal:
            self._partly_failed(entry, refusal)
            return
        except ActionRequired:  # the same for every message: deliver_due retries the rest without trying them
            raise
        except Exception as error:
            self._failed(entry, error)
            return
        self.spool.delivered(entry.id)
        self.eraser.request()
        log.info("delivered spool entry %d (submission %s)", entry.id, entry.submission_id)

    def _partly_failed(self, entry: Claimed, refusal: RecipientsRefused) -> None:
        """Keep the message only for the refused recipients, who get a row each for the 4xx ones (retried) and
        the 5xx ones (dead at once, or dropped for an acknowledgement), with the same Message-ID."""
        groups = [group for group in (refusal.temporary, refusal.permanent) if group]
        new_ids = dict(zip(groups, self.spool.split(entry, groups), strict=True))
        code = error_code(refusal)
        if refusal.temporary in new_ids:
            log.warning(
                "spool entry %d (submission %s) refused for %d recipient(s), will retry them as entry %d: %s",
                entry.id,
                entry.submission_id,
                len(refusal.temporary),
                new_ids[refusal.temporary],
                code,
            )
            self.spool.retry_later(new_ids[refusal.temporary], code)
        if refusal.permanent in new_ids:
            self._refused(new_ids[refusal.permanent], entry.kind, code)

    def _failed(self, entry: Claimed, error: BaseException) -> None:
        """Permanent refusals are final at once; anything else is retried later."""
        code = error_code(error)
        if isinstance(error, PermanentRelayError):
            self._refused(entry.id, entry.kind, code)
            return
        log.warning("spool entry %d (submission %s) not delivered, will retry: %s", entry.id, entry.submission_id, code)
        self.spool.retry_later(entry.id, code, alert=isinstance(error, ActionRequired))

    def _refused(self, entry_id: int, kind: str, code: str) -> None:
        """A permanent refusal: the association's copy stays dead until an operator handles it;
        an acknowledgement (a mistyped address, typically) is logged and dropped."""
        if kind == ACKNOWLEDGEMENT:
            self.spool.drop(entry_id, code)
        else:
            self.spool.dead(entry_id, code)

    # -- the thread ----------------------------------------------------------

    def start(self) -> None:
        """Run in a daemon thread, with the eraser's beside it; daemons because the spool,
        not the threads, keeps mail safe."""
        self.eraser.start()
        if self._thread and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="forms-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the message in hand, end the thread, then erase what it delivered last."""
        self._stopping.set()
        self.spool.accepted.set()
        if self._thread:
            self._thread.join(timeout)
        self.eraser.stop()

    def _run(self) -> None:
        """Deliver whatever is due, then sleep until this process accepts a submission, a retry falls due,
        or the poll interval (which finds what other processes accepted) ends."""
        while not self._stopping.is_set():
            pause = self.poll_seconds
            try:
                self.deliver_all()
                pause = min(pause, self.spool.seconds_until_due())
            except Exception as error:  # one bad pass (locked or full disk...) must not end delivery
                log.error("delivery pass failed: %s", type(error).__name__)
            self.spool.accepted.wait(pause)
            self.spool.accepted.clear()


def init_delivery(app: Flask, spool: Spool) -> Deliverer:
    """Register the spool and a (not yet started) Deliverer on the app (extensions.py); the lease is by
    default ten times FORMS_MAIL_TIMEOUT, since half of it must outlast one send (several SMTP commands)."""
    lease = app.config["SPOOL_LEASE_SECONDS"] or 10 * app.config["MAIL_TIMEOUT"]
    deliverer = Deliverer(spool, partial(Relay, app, verified_context(app.config)), lease_seconds=lease)
    app.extensions[extensions.SPOOL] = spool
    app.extensions[extensions.DELIVERER] = deliverer
    return deliverer


def start_delivery(app: Flask) -> Deliverer:
    """Start this process's delivery thread (the WSGI entry point's, not the CLI's), counting the app's
    requests so that it gives way to them; at exit it finishes the message in hand (no duplicate)."""
    deliverer = extensions.deliverer(app)
    app.wsgi_app = deliverer.traffic.middleware(app.wsgi_app)
    deliverer.start()
    atexit.register(deliverer.stop)
    return deliverer

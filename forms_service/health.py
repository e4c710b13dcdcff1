"""The health check: would a submission be accepted now? The figures only for the operator (README.md,
"Endpoints").

The public answer is one bit: queue depth and the age of the oldest message would tell anyone who watches
them when someone has just asked for help. "Accepted now" is proved, not assumed: a probe takes a
submission's path (spool.Spool.probe), at most every PUBLIC_PROBE_SECONDS per process for the public answer
(a gpg run, a write and an fsync each), at each call for the operator's, which is `spool check`'s verdict.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import time
from dataclasses import dataclass

from flask import Flask

from . import extensions
from .fields import FORMS
from .form_model import MEGABYTE
from .openpgp import GnuPGFailed, Keyring, NoUsableKey
from .outgoing import OutgoingMail
from .spool import Spool, SpoolBounds, SpoolUnavailable, unreadable_problem
from .spool.admin import utc

log = logging.getLogger(__name__)

BEARER = "bearer"  # RFC 6750; schemes are case-insensitive (RFC 9110)
LIMITER_EXTENSION = "limiter"  # where Flask-Limiter registers itself (a set of limiters)
STORAGE_WATCH = "forms_storage_watch"
PUBLIC_PROBE_SECONDS = 5.0
SUBMISSION_FAILED = "a submission would fail"
NOT_WRITABLE = "not writable"
NO_USABLE_KEY = "no usable OpenPGP key: every key in FORMS_PGP_KEYS has expired"
ENCRYPTION_FAILED = "OpenPGP encryption failed"
STORAGE_DOWN = "rate-limit storage unreachable: limits are counted per process until it is back"
OK, WARNING, CRITICAL, UNKNOWN = range(4)  # monitoring-plugins exit statuses (`spool check`)
STATUS_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# Within this of the bound, the next application (a 5 MB resumé: about 9 MB sealed) would be refused.
RESERVE_MARGIN = 10 * MEGABYTE


def is_operator(authorization: str | None, token: str | None) -> bool:
    """True when `authorization` (the header) carries the configured `token` as a Bearer credential, compared
    in constant time (the time an answer takes says nothing of a guess); without a token, nobody is."""
    if not token or not authorization:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower() == BEARER and hmac.compare_digest(credentials.strip().encode(), token.encode())


class PublicHealth:
    """This process's public answer: the last probe's problem (None: healthy), proved again once
    `every` seconds old (two threads of a threaded server may both prove it: harmless). `clock`: tests
    give one they move themselves."""

    def __init__(self, every: float = PUBLIC_PROBE_SECONDS, clock=time.monotonic):
        self.every, self.clock = every, clock
        self._problem, self._proved = None, -float("inf")

    def problem(self, prove) -> str | None:
        """The last problem, or `prove()`'s when it is too old."""
        if self.clock() - self._proved >= self.every:
            self.record(prove())
        return self._problem

    def record(self, problem: str | None) -> None:
        """What a fresh probe, or a failed submission, just showed."""
        self._problem, self._proved = problem, self.clock()


def submission_failed(app: Flask) -> None:
    """A submission could not be accepted: the public answer is red until the next probe."""
    extensions.public_health(app).record(SUBMISSION_FAILED)


def answer(app: Flask, keyring: Keyring | None, operator: bool) -> tuple[dict, int]:
    """The health answer and its status: 200 when a submission would be accepted now, else 503; for the
    operator, `spool check`'s verdict (with its default thresholds) as well."""
    public = extensions.public_health(app)
    if operator:  # proved afresh, and the public answer with it
        verdict = assess(app, keyring, Thresholds())
        public.record(None if verdict.accepting else SUBMISSION_FAILED)
        return verdict.as_dict(), 200 if verdict.accepting else 503
    problem = public.problem(lambda: probe(extensions.spool(app), keyring))
    return {"ok": problem is None}, 200 if problem is None else 503


def probe(spool: Spool, keyring: Keyring | None) -> str | None:
    """What would make a submission fail now, or None: the probe takes a submission's path."""
    try:
        data = keyring.probe() if keyring else b"probe"
    except NoUsableKey:
        return NO_USABLE_KEY
    except GnuPGFailed as error:
        return f"{ENCRYPTION_FAILED} ({error})"
    try:
        spool.probe(OutgoingMail("<health-probe>", "", (), data))
    except SpoolUnavailable as error:
        return f"{NOT_WRITABLE} ({error})"
    return None


def reserve_lines(bounds: SpoolBounds, used: int) -> list[str]:
    """A line when the spool is past its bound for the forms that cannot use the reserve: a warning, since
    those that use it (a request for help) still get in; past the whole bound, the probe itself fails."""
    limit = bounds.limit(reserve=False)
    if used + RESERVE_MARGIN <= limit:
        return []
    open_to = ", ".join(form.name for form in FORMS.values() if form.uses_reserve) or "no form"
    return [
        f"spool holds {used / MEGABYTE:.0f} MB, at FORMS_SPOOL_MAX_BYTES less FORMS_SPOOL_RESERVE_BYTES "
        f"({limit / MEGABYTE:.0f} MB): only the reserve is left ({open_to}); the other forms answer 503 "
        "until deliveries drain it (is the mail server reachable?)"
    ]


def storage_reachable(app: Flask) -> bool | None:
    """Whether the rate-limit storage answers (Flask-Limiter's `storage.check()`); None when rate limiting is
    off. A change is logged once. Never a reason for healthz to be red: submissions are still accepted (limits
    count in memory meanwhile), and a shared Redis down must not take every instance out of rotation."""
    limiters = [limiter for limiter in app.extensions.get(LIMITER_EXTENSION, ()) if limiter.enabled]
    if not limiters:
        return None
    try:
        reachable = all(limiter.storage.check() for limiter in limiters)
    except Exception:  # a storage without check(), or one that raises instead of answering False
        reachable = False
    was_down = app.extensions.get(STORAGE_WATCH, False)
    if was_down == reachable:
        app.extensions[STORAGE_WATCH] = not reachable
        if reachable:
            log.warning("rate-limit storage reachable again")
        else:
            log.error(STORAGE_DOWN + " (submissions are still accepted)")
    return reachable


@dataclass(frozen=True)
class Thresholds:
    """When `spool check` warns or alerts about the queue: above these counts and ages (seconds). 15 minutes:
    several retries have failed; an hour: the mail server has been failing long enough that someone must look."""

    warning_queued: int = 10
    critical_queued: int = 100
    warning_age: int = 900
    critical_age: int = 3600


@dataclass(frozen=True)
class Verdict:
    """What monitoring acts on: `spool check` prints it as one line, the operator's healthz as JSON."""

    status: int  # OK, WARNING, CRITICAL
    reasons: list[str]  # the critical ones first
    accepting: bool  # a submission would be accepted now: the public answer's one bit
    spool: dict | None = None  # SpoolStats.as_dict(), when the spool could be read
    figures: str = ""  # the counts the line ends with
    perfdata: str = ""

    @property
    def summary(self) -> str:
        return "; ".join(filter(None, [*self.reasons, self.figures]))

    def as_dict(self) -> dict:
        return {"ok": self.accepting, "status": STATUS_NAMES[self.status], "reasons": self.reasons, "spool": self.spool}


def assess(app: Flask, keyring: Keyring | None, limits: Thresholds) -> Verdict:
    """The monitoring verdict, for `spool check` and the operator's healthz alike: what is CRITICAL and what
    a WARNING, cli.check's help says. Dead acknowledgements (expired after FORMS_MAX_AGE_SECONDS of
    temporary failures) are only counted: nobody needs them."""
    spool = extensions.spool(app)
    critical, warning = [], []
    problem = probe(spool, keyring)
    if problem:
        critical.append(f"spool {problem}" if problem.startswith(NOT_WRITABLE) else problem)
    expired, expiring = keyring.notices() if keyring else ([], [])  # one line each naming the key
    critical += expired
    warning += expiring
    if storage_reachable(app) is False:
        critical.append(STORAGE_DOWN)
    try:
        stats, dead_copies = spool.stats(), spool.dead_copies()
    except sqlite3.Error as error:  # a page the probe does not touch may be the broken one
        return Verdict(CRITICAL, [*critical, f"spool unreadable ({type(error).__name__})", *warning], not problem)
    warning += reserve_lines(spool.bounds, stats.used_bytes)
    if dead_copies:
        critical.append(f"{dead_copies} association copies dead: `flask --app forms_service spool dead`")
    # Only the rows since the last check, not every CV every 5 minutes; none when the probe could not write.
    unreadable = not (problem or "").startswith(NOT_WRITABLE) and unreadable_problem(
        spool, app.config, since_last_check=True
    )
    if unreadable:
        critical.append(f"{unreadable.code}; the service will not start")
    age = stats.oldest_age_seconds or 0.0
    for value, warn, crit, what in (
        (stats.queued, limits.warning_queued, limits.critical_queued, "queued messages"),
        (age, limits.warning_age, limits.critical_age, "seconds the oldest has waited"),
    ):
        if value > crit:
            critical.append(f"{value:.0f} {what} (critical above {crit})")
        elif value > warn:
            warning.append(f"{value:.0f} {what} (warning above {warn})")
    error = stats.delivery_error
    if error and error.alert:
        critical.append(f"delivery failing since {utc(error.since)}: {error.error} (mail is kept, sent once fixed)")
    elif error and (stats.queued > limits.warning_queued or age > limits.warning_age):  # why the queue waits
        warning.append(f"delivery failing since {utc(error.since)}: {error.error}")
    status = CRITICAL if critical else WARNING if warning else OK
    figures = f"{stats.queued} queued, {dead_copies} dead"
    if stats.dead > dead_copies:
        figures += f" (and {stats.dead - dead_copies} acknowledgements)"
    perfdata = (
        f"queued={stats.queued};{limits.warning_queued};{limits.critical_queued} dead={dead_copies};;0 "
        f"dead_acknowledgements={stats.dead - dead_copies} "
        f"oldest={age:.0f}s;{limits.warning_age};{limits.critical_age}"
    )
    return Verdict(status, [*critical, *warning], not problem, stats.as_dict(), figures, perfdata)

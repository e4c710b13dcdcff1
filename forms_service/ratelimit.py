"""Limits on what one client, or one address, can make the service do.

- Submissions (FORMS_RATELIMIT_DEFAULT): only accepted submissions spend a
  client's budget. A post is charged as it arrives (one atomic increment, so
  concurrent posts on several workers never pass the limit together) and
  given back when it ends without being accepted.
- Refusals (FORMS_RATELIMIT_REFUSALS): posts from foreign origins, honeypot
  hits, malformed or invalid posts spend a separate budget; foreign-origin
  posts have their own, so a hostile page can use up only that one, never
  the budget its visitors need to reach us.
- Daily quotas: acknowledgements per recipient address (FORMS_ACK_LIMIT)
  and urgent pages to the on-call address per client (FORMS_URGENT_LIMIT).

A client is its IPv4 address or its IPv6 /64 (one household or phone). All
counters live in the storage of FORMS_RATELIMIT_STORAGE_URI (by default the
SQLite file of counters.py) under a keyed hash: no address reaches it.
Every form is posted to one route, so one budget per client covers them all.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import sqlite3
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limit, Limiter
from limits import RateLimitItemPerDay
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from . import counters, guard
from .config import ConfigError
from .faults import unusable

log = logging.getLogger(__name__)

SUBMIT_ENDPOINT = "forms.submit"
LIMITS_EXTENSION = "forms_limits"
SUBMISSIONS_SCOPE = "submissions"
IPV6_CLIENT_PREFIX = 64
QUOTA_FALLBACK_SECONDS = 60


class Limits:
    """The keyed hash of client and address keys, and the daily quotas, for one app."""

    def __init__(self, secret: str, storage_uri: str, ack_limit: int, urgent_limit: int):
        # A key of its own, derived from the Flask secret: hashes here prove nothing about other uses of it.
        self._key = hmac.new(secret.encode(), b"forms_service rate-limit keys", hashlib.sha256).digest()
        self._quota = FixedWindowRateLimiter(storage_from_string(storage_uri))
        self._fallback = FixedWindowRateLimiter(MemoryStorage())
        self._fallback_until = 0.0
        self._ack = RateLimitItemPerDay(ack_limit)
        self._urgent = RateLimitItemPerDay(urgent_limit)

    def hashed(self, value: str) -> str:
        """What the storage holds instead of an address: HMAC-SHA256, truncated (128 bits)."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def acknowledgement_allowed(self, address: str) -> bool:
        """Spend one of the address's daily acknowledgements; False when none is left.

        "+tags" are dropped and case ignored: a.b+1@x and A.B+2@X fill one inbox.
        """
        local, _, domain = address.rpartition("@")
        return self._spend(self._ack, "ack", f"{local.split('+', 1)[0]}@{domain}".lower())

    def urgent_page_allowed(self) -> bool:
        """Spend one of this client's daily pages to the on-call address; False when none is left."""
        return self._spend(self._urgent, "urgent", client())

    def _spend(self, item, kind: str, value: str) -> bool:
        """Counted in the shared storage; while it fails, in this process's memory, as Flask-Limiter
        does, so that an unreachable Redis is not waited for on every submission."""
        key = self.hashed(value)
        allowed = None
        if time.monotonic() >= self._fallback_until:
            try:
                allowed = self._quota.hit(item, kind, key)
            except Exception as error:  # any storage (SQLite, Redis) has its own errors
                log.warning("daily quotas counted in memory for %d s: %s", QUOTA_FALLBACK_SECONDS, type(error).__name__)
                self._fallback_until = time.monotonic() + QUOTA_FALLBACK_SECONDS
        if allowed is None:
            allowed = self._fallback.hit(item, kind, key)
        if not allowed:
            log.warning("daily %s quota reached: that email is left out", kind)
        return allowed


def client() -> str:
    """The client's address as limits see it: IPv4, or the /64 network of an IPv6 address."""
    text = request.remote_addr or ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def limits() -> Limits:
    """This app's keyed hash and daily quotas."""
    return current_app.extensions[LIMITS_EXTENSION]


def client_key() -> str:
    """The limiter's key for this request: the keyed hash of the client."""
    return limits().hashed(client())


def submission_accepted() -> None:
    """Called by the view once a submission is on disk: only then does it spend the budget."""
    g.forms_accepted = True


def _accepted() -> bool:
    return bool(g.get("forms_accepted"))


def _not_a_submission() -> bool:
    """Only posting a form is limited; health checks and error pages never are."""
    return request.endpoint != SUBMIT_ENDPOINT


def _not_a_site_submission() -> bool:
    """Posts from foreign origins never touch the budget of the client they come from."""
    return _not_a_submission() or not guard.origin_allowed(current_app.config["ALLOWED_ORIGINS"])


def _refusal_scope(endpoint: str) -> str:
    """Refusals from the site and from foreign origins are counted apart (the endpoint is always the same)."""
    return "refused" if guard.origin_allowed(current_app.config["ALLOWED_ORIGINS"]) else "refused-foreign"


def _refused(response: Response) -> bool:
    """A post not accepted, by the client's doing (a 503 or 500 is ours: it costs nothing)."""
    return not _accepted() and response.status_code < 500


def _give_back(limiter: Limiter, response: Response) -> Response:
    """Return what a submission that was not accepted was charged when it arrived."""
    if request.endpoint != SUBMIT_ENDPOINT or _accepted():
        return response
    for charged in limiter.current_limits:
        if charged.request_args[-1].endswith(SUBMISSIONS_SCOPE):
            try:
                charged.limiter.storage.incr(charged.key, charged.limit.get_expiry(), amount=-1)
            except Exception as error:  # as Flask-Limiter itself: a storage error never fails the answer
                log.warning("rate limit not given back: %s", type(error).__name__)
    return response


def install(app: Flask) -> Limiter:
    """One limiter and one set of quotas per app, so several apps in one process never share counters."""
    config = app.config
    in_data_dir = not config["RATELIMIT_STORAGE_URI"]
    if in_data_dir:
        config["RATELIMIT_STORAGE_URI"] = counters.storage_uri(config["DATA_DIR"])
    try:
        app.extensions[LIMITS_EXTENSION] = Limits(
            config["SECRET_KEY"], config["RATELIMIT_STORAGE_URI"], config["ACK_LIMIT"], config["URGENT_LIMIT"]
        )
        limiter = Limiter(
            client_key,
            app=app,
            default_limits=[
                Limit(
                    limit_provider=config["RATELIMIT_DEFAULT"],
                    scope=SUBMISSIONS_SCOPE,
                    exempt_when=_not_a_site_submission,
                ),
                Limit(
                    limit_provider=config["RATELIMIT_REFUSALS"],
                    scope=_refusal_scope,
                    exempt_when=_not_a_submission,
                    deduct_when=_refused,
                ),
            ],
        )
    except ConfigurationError as error:
        if isinstance(error.__cause__, (OSError, sqlite3.Error)):  # the counters file could not be made
            path = counters.file_of(config["RATELIMIT_STORAGE_URI"])
            setting = "DATA_DIR" if in_data_dir else "RATELIMIT_STORAGE_URI"
            raise unusable(setting, path, error.__cause__, "cannot hold the rate-limit counters") from None
        # The URI is not quoted back: it may hold the Redis password.
        raise ConfigError(
            "RATELIMIT_STORAGE_URI",
            "is not usable: leave it unset (a file in FORMS_DATA_DIR), or give redis://host:port/db or memory://",
        ) from None
    app.after_request(functools.partial(_give_back, limiter))
    return limiter

"""Limits on what one client, one network or one inbox can make the service do (README.md, "Limits"):
submissions (Flask-Limiter: charged as a post arrives, given back unless it is accepted), refusals (counted
once a post is refused; a client past those of its uploads has its uploads answered 429 before they are read),
daily quotas of acknowledgements and urgent pages."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import sqlite3
import time

from flask import Flask, Response, after_this_request, current_app, g, request
from flask_limiter import Limit, Limiter
from limits import RateLimitItemPerDay, parse_many
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from . import answers, counters, guard
from .config import ConfigError
from .faults import unusable

log = logging.getLogger(__name__)

SUBMIT_ENDPOINT = "forms.submit"
# The refusal budget's scopes: posts of the site, of forms with a file, from a foreign origin.
REFUSED, REFUSED_UPLOADS, REFUSED_FOREIGN = "refused", "refused-uploads", "refused-foreign"
LIMITS_EXTENSION = "forms_limits"
IPV6_CLIENT_PREFIX = 64
IPV6_NETWORK_PREFIX = 48
QUOTA_FALLBACK_SECONDS = 60
# One inbox, whatever the dots in its name or the domain's spelling (Google's own rule).
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def inbox(address: str) -> str:
    """The inbox an address reaches, as the acknowledgement quota counts it: case and a "+tag"
    ignored; for Gmail, dots too, googlemail.com being gmail.com (A.B+1@Gmail.com is ab@gmail.com)."""
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        return f"{local.replace('.', '')}@gmail.com"
    return f"{local}@{domain}"


def _address() -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The request's address (an IPv4-mapped IPv6 address as the IPv4 one), or None."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client() -> str:
    """The client's address as limits see it: IPv4, or the /64 network of an IPv6 address."""
    return network(IPV6_CLIENT_PREFIX) or str(_address() or request.remote_addr or "")


def network(prefix: int = IPV6_NETWORK_PREFIX) -> str | None:
    """The /48 network of an IPv6 client, counted on top of its /64 (the client, `prefix` 64); None for IPv4."""
    address = _address()
    if address is None or address.version == 4:
        return None
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class Limits:
    """The keyed hash of client and address keys, the refusal budget and the daily quotas, for one app."""

    def __init__(self, config):
        # A key of its own, derived from the Flask secret: hashes here prove nothing about other uses of it.
        self._key = hmac.new(config["SECRET_KEY"].encode(), b"forms_service rate-limit keys", hashlib.sha256).digest()
        self._quota = FixedWindowRateLimiter(storage_from_string(config["RATELIMIT_STORAGE_URI"]))
        self._fallback = FixedWindowRateLimiter(MemoryStorage())
        self._fallback_until = 0.0
        self._refusals = parse_many(config["RATELIMIT_REFUSALS"])
        self._ack = [RateLimitItemPerDay(config["ACK_LIMIT"])]
        self._urgent = [RateLimitItemPerDay(config["URGENT_LIMIT"])]

    def hashed(self, value: str) -> str:
        """What the storage holds instead of an address: HMAC-SHA256, truncated (128 bits)."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def acknowledgement_allowed(self, address: str) -> bool:
        """Spend one of the inbox's daily acknowledgements (see `inbox`); False when none is left."""
        return self._quota_left("ack", self._ack, [inbox(address)])

    def urgent_page_allowed(self) -> bool:
        """Spend one of the daily pages to the on-call address of this client and of its /48;
        False when either has none left."""
        return self._quota_left("urgent", self._urgent, [value for value in (client(), network()) if value])

    def refusal_wait(self, scope: str) -> float:
        """Spend one of this client's refusals: 0 while the budget lasts, else the seconds until it is back."""
        return self._spend(self._refusals, scope, [client()])

    def refusals_spent(self, scope: str) -> float:
        """The same question, spending nothing: 0 while this client has refusals left."""
        return self._spend(self._refusals, scope, [client()], spend=False)

    def _quota_left(self, kind: str, items: list, values: list[str]) -> bool:
        if self._spend(items, kind, values):
            log.warning("daily %s quota reached: that email is left out", kind)
            return False
        return True

    def _spend(self, items: list, kind: str, values: list[str], spend: bool = True) -> float:
        """Spend one of each item for each value (or, not `spend`, only look): 0 when every one had some
        left, else the seconds until the last one spent returns. Counted in the shared storage; while it fails, in this
        process's memory, as Flask-Limiter does, so an unreachable Redis is not waited for on every post."""
        keys = [self.hashed(value) for value in values]
        if time.monotonic() >= self._fallback_until:
            try:
                return _spent(self._quota, items, kind, keys, spend)
            except Exception as error:  # any storage (SQLite, Redis) has its own errors
                log.warning("quotas counted in memory for %d s: %s", QUOTA_FALLBACK_SECONDS, type(error).__name__)
                self._fallback_until = time.monotonic() + QUOTA_FALLBACK_SECONDS
        return _spent(self._fallback, items, kind, keys, spend)


def _spent(limiter: FixedWindowRateLimiter, items: list, kind: str, keys: list[str], spend: bool) -> float:
    wait = 0.0
    for key in keys:
        for item in items:
            if not (limiter.hit if spend else limiter.test)(item, kind, key):
                wait = max(wait, limiter.get_window_stats(item, kind, key).reset_time - time.time(), 1.0)
    return wait


def limits() -> Limits:
    """This app's keyed hash, refusal budget and daily quotas."""
    return current_app.extensions[LIMITS_EXTENSION]


def client_key() -> str:
    """The limiter's key for this request: the keyed hash of the client."""
    return limits().hashed(client())


def network_key() -> str:
    """The key of the per-network budget: the keyed hash of the client's /48."""
    return limits().hashed(network() or client())


def upload_wait() -> float:
    """0 when this client may have a file checked now, else the seconds until it may. The upload slots
    (upload_slots.py) are shared by every volunteer: a client whose uploads have spent their refusals (a
    budget of their own, REFUSED_UPLOADS) must not hold them with files that will be refused again, so its
    uploads are answered 429 before a slot is taken. Other refusals never hold an upload back, and nothing
    holds back a request for help."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return 0.0
    return limits().refusals_spent(REFUSED_UPLOADS)


def submission_accepted() -> None:
    """Called by the view once a submission is on disk: only then does it spend the budget."""
    g.forms_accepted = True


def _accepted() -> bool:
    return bool(g.get("forms_accepted"))


def _not_a_site_submission() -> bool:
    """Posts from foreign origins never touch the budget of the client they come from."""
    return not guard.origin_allowed(current_app.config["ALLOWED_ORIGINS"])


def _watch_refusals() -> None:
    """Have a post's answer counted against the refusal budget once known: before the app's own
    after-request functions (Flask), so a 429 replacing a refusal still gets guard.py's headers."""
    if request.endpoint == SUBMIT_ENDPOINT and current_app.config["RATELIMIT_ENABLED"]:
        after_this_request(_spend_refusal)


def _spend_refusal(response: Response) -> Response:
    """A refused post (by the client's doing: not our 500 or 503, nor the submission budget's 429) spends one
    refusal; once they are spent, its answer is 429."""
    if _accepted() or response.status_code >= 500 or response.status_code == 429:
        return response
    form = answers.form_of_path()
    if not guard.origin_allowed(current_app.config["ALLOWED_ORIGINS"]):
        scope = REFUSED_FOREIGN
    else:
        scope = REFUSED_UPLOADS if form is not None and form.takes_file else REFUSED
    wait = limits().refusal_wait(scope)
    if not wait:
        return response
    return answers.failure(429, answers.language(), form, retry_after=math.ceil(wait))


def _give_back(limiter: Limiter, response: Response) -> Response:
    """Return what a submission that was not accepted was charged when it arrived."""
    if request.endpoint != SUBMIT_ENDPOINT or _accepted():
        return response
    for charged in limiter.current_limits:
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
        app.extensions[LIMITS_EXTENSION] = Limits(config)
        limiter = Limiter(
            client_key,
            app=app,
            default_limits=[
                Limit(config["RATELIMIT_DEFAULT"], scope="submissions", exempt_when=_not_a_site_submission),
                Limit(
                    config["RATELIMIT_NETWORK"],
                    key_function=network_key,
                    scope="network-submissions",
                    exempt_when=lambda: _not_a_site_submission() or network() is None,  # IPv6 only
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
    # Only posting a form is limited: health checks and error pages never are, and cost no lookup.
    limiter.request_filter(lambda: request.endpoint != SUBMIT_ENDPOINT)
    app.before_request(_watch_refusals)
    app.after_request(functools.partial(_give_back, limiter))
    return limiter

"""Per-client submission limits with Flask-Limiter: memory by default, Redis when configured.

Limits come from FORMS_RATELIMIT_DEFAULT; both forms share one route, so one
budget per client covers both and alternating forms gains nothing.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.errors import ConfigurationError

from .config import ConfigError

SUBMIT_ENDPOINT = "forms.submit"


def _not_a_submission() -> bool:
    """Only posting a form costs budget; health checks and error pages never do."""
    return request.endpoint != SUBMIT_ENDPOINT


def _check_limits(value: object) -> None:
    """Flask-Limiter would only log a limit it cannot parse, and then limit nothing."""
    try:
        parse_many(value)
    except (ValueError, TypeError):
        raise ConfigError("RATELIMIT_DEFAULT", "is not a list of limits such as "
                                               "'10 per minute;60 per hour;200 per day'") from None


def install(app: Flask) -> Limiter:
    """One limiter per app, so several apps in one process never share counters."""
    _check_limits(app.config["RATELIMIT_DEFAULT"])
    try:
        return Limiter(get_remote_address, app=app, default_limits_exempt_when=_not_a_submission)
    except ConfigurationError:
        # The URI is not quoted back: it may hold the Redis password.
        raise ConfigError("RATELIMIT_STORAGE_URI", "is not usable: give memory:// or redis://host:port/db "
                                                   "(with the redis client installed)") from None

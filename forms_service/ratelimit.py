"""Per-client submission limits with Flask-Limiter: memory by default, Redis when configured.

Limits come from FORMS_RATELIMIT_DEFAULT; both forms share one route, so one
budget per client covers both and alternating forms gains nothing.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

SUBMIT_ENDPOINT = "forms.submit"


def _not_a_submission() -> bool:
    """Only posting a form costs budget; health checks and error pages never do."""
    return request.endpoint != SUBMIT_ENDPOINT


def install(app: Flask) -> Limiter:
    """One limiter per app, so several apps in one process never share counters."""
    return Limiter(get_remote_address, app=app, default_limits_exempt_when=_not_a_submission)

"""The health check: can submissions be accepted now? The spool's figures only for the operator.

The public answer is one bit, {"ok": true} or {"ok": false} (503): queue depth
and the age of the oldest message would tell anyone who watches them when
someone has just asked for help. The operator's monitoring gets the figures
by sending FORMS_HEALTH_TOKEN as `Authorization: Bearer <token>`; a missing or
wrong token gets the public answer, the same as when no token is configured.
"""

from __future__ import annotations

import hmac

from .spool import Spool, SpoolUnavailable

BEARER = "bearer"  # RFC 6750; schemes are case-insensitive (RFC 9110)


def is_operator(authorization: str | None, token: str | None) -> bool:
    """True when `authorization` (the header) carries the configured `token` as a Bearer credential.

    Compared in constant time, so the time an answer takes says nothing about
    how much of a guess was right. Without a configured token, nobody is.
    """
    if not token or not authorization:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower() == BEARER and hmac.compare_digest(credentials.strip().encode(), token.encode())


def answer(spool: Spool, operator: bool) -> tuple[dict, int]:
    """The health answer and its status: 200 when a submission would be accepted now, else 503."""
    problem = _problem(spool)
    body: dict = {"ok": problem is None}
    if operator:
        body["spool"] = problem or spool.stats().as_dict()
    return body, 200 if problem is None else 503


def _problem(spool: Spool) -> str | None:
    """What would make a submission fail now, or None: each probe of the service goes here."""
    try:
        spool.check_writable()
    except SpoolUnavailable:
        return "not writable"
    return None

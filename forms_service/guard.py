"""Refusing posts from other sites, and hardening every response the service sends."""

from __future__ import annotations

import secrets

from flask import Response, current_app, g, request

from .config import origin_of

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Answers are personal (errors echo field names, ids): never keep them in any cache.
    "Cache-Control": "no-store",
}


def origin_allowed(allowed: list[str]) -> bool:
    """Origin, else Referer, must name an allowed site; a request with neither passes: browsers send Origin
    on every cross-site POST, and clients without either are not browsers acting for someone else."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return True
        origin = origin_of(referer)
    return origin.lower() in {item.lower() for item in allowed}


def style_nonce() -> str:
    """The per-response nonce that lets the error page's own small stylesheet through the CSP."""
    if "style_nonce" not in g:
        g.style_nonce = secrets.token_urlsafe(16)
    return g.style_nonce


def harden(response: Response) -> Response:
    """Add the security headers, with a CSP that allows no script at all: only our inline style,
    and for a form given back in the site's page (answers.py), the site's own stylesheets and
    images (from FORMS_SITE_URL's origin, usually ours) and posting that form again."""
    response.headers.update(SECURITY_HEADERS)
    # Unless the answer chose its own: a form given back must say where it posts from (answers.py).
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    site = origin_of(current_app.config["SITE_URL"])
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {site} 'nonce-{style_nonce()}'; img-src {site} data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return response

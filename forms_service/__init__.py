"""forms_service: receives the volunteer and support forms and relays them by email."""

from __future__ import annotations

import io

from flask import Flask, Request
from flask_mail import Mail
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, guard, i18n, ratelimit, views


class MemoryRequest(Request):
    """Keeps uploaded files in memory: Werkzeug would spool big ones to a plaintext temp file.

    MAX_CONTENT_LENGTH bounds what one request can hold.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(settings: dict | None = None) -> Flask:
    """Build the app from FORMS_* environment variables, or from `settings` (tests) instead."""
    app = Flask(__name__, static_folder=None)
    app.request_class = MemoryRequest
    config.load(app, settings)
    Mail(app)
    ratelimit.install(app)
    i18n.install(app.jinja_env)
    guard.install(app)
    app.register_blueprint(views.bp)
    proxies = app.config["PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app

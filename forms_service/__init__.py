"""forms_service: receives the volunteer and support forms, spools them durably and relays them by email."""

from __future__ import annotations

import io
import logging

from flask import Flask, Request
from flask_mail import Mail
from werkzeug.middleware.proxy_fix import ProxyFix

from . import guard, i18n, ratelimit, views
from .cli import spool_cli
from .compose import MailSettings
from .config import load as load_settings
from .delivery import init_delivery
from .openpgp import recipients_from_config
from .spool import spool_from_config


class MemoryRequest(Request):
    """Keeps uploaded files in memory: Werkzeug would spool big ones to a plaintext temp file.

    MAX_CONTENT_LENGTH bounds what one request can hold.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(config: dict | None = None) -> Flask:
    """Build the app from FORMS_* environment variables, or from `config` (tests) instead:
    keys without the FORMS_ prefix, and the environment is then not read.

    The spool and its deliverer are registered but no delivery thread is
    started: wsgi.py and the dev server start it, so that `flask spool ...`
    commands never send mail behind the operator's back.
    """
    app = Flask(__name__, static_folder=None)
    app.request_class = MemoryRequest
    load_settings(app, config)
    # Flask leaves its logger at WARNING outside debug mode; the one line per
    # submission (id, form, outcome, sizes) and per delivery is the operators' record.
    app.logger.setLevel(logging.INFO)
    # Keys are vetted once here: an expired or revoked key stops start-up, not a submission.
    app.extensions[views.MAIL_SETTINGS] = MailSettings.from_config(app.config, recipients_from_config(app.config))
    init_delivery(app, spool_from_config(app.config))
    app.cli.add_command(spool_cli)
    Mail(app)
    ratelimit.install(app)
    i18n.install(app.jinja_env)
    guard.install(app)
    app.register_blueprint(views.bp)
    proxies = app.config["PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app

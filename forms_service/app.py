"""The app factory: settings, spool and deliverer, limits, security headers and the endpoints, put together."""

from __future__ import annotations

import io
import logging
import traceback

from flask import Flask, Request, request
from flask_mail import Mail
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.middleware.proxy_fix import ProxyFix

from . import extensions, guard, health, i18n, ratelimit, views
from .cli import looking_up_a_command, spool_cli, unconfigured_app
from .compose import MailSettings
from .config import ConfigError
from .config import load as load_settings
from .delivery import init_delivery
from .faults import HostFault
from .openpgp import recipients_from_config
from .spool import spool_from_config
from .startup import forbid_core_dumps
from .static_site import PROJECT
from .upload_slots import UploadSlots


class Upload(io.BytesIO):
    """An uploaded file in memory, read whole without a copy: BytesIO.read copies, getvalue hands out the
    buffer itself (shared until the next write, which never comes), so the resumé is held once."""

    def read(self, size: int | None = -1) -> bytes:
        value = self.getvalue()
        if self.tell() == 0 and (size is None or size < 0 or size >= len(value)):
            self.seek(len(value))
            return value
        return super().read(size)


class MemoryRequest(Request):
    """Keeps uploaded files in memory (MAX_CONTENT_LENGTH bounds them): Werkzeug would spool big ones to a
    plaintext temp file."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return Upload()


class FormsApp(Flask):
    """Flask, logging an unexpected error's whole stack without a value in it: Flask's own line carries the
    exception's message, which may quote what someone typed (a UnicodeError holds the text), and the
    traceback quotes source lines. Each frame's file, line and function say where it broke."""

    def log_exception(self, exc_info) -> None:
        _, error, trace = exc_info
        frames = "".join(
            f"\n  {frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(trace)
        )
        self.logger.error(
            "unexpected %s on %s %s, stack (most recent call last):%s",
            type(error).__name__,
            request.method,
            request.path,
            frames,
        )


def create_app(config: dict | None = None) -> Flask:
    """Build the app from FORMS_* environment variables, or from `config` (tests) instead: keys without the
    FORMS_ prefix, and the environment is then not read.

    No delivery thread is started (wsgi.py and the dev server do), so `flask spool ...` commands never send
    mail behind the operator's back. When a setting prevents start-up while `flask` looks for a command, it
    gets an app with the spool commands only, so that `spool check` reports CRITICAL (cli.py).
    """
    if config is None:  # a real process (gunicorn's workers, `flask` commands), not a test's app
        forbid_core_dumps()
    try:
        return _build(config)
    except (ConfigError, HostFault, Exception) as error:  # those two are SystemExits, not Exceptions
        if config is None and looking_up_a_command():
            return unconfigured_app(error)
        raise


def _build(config: dict | None) -> Flask:
    """The app, its extensions and commands; raises ConfigError naming a bad setting."""
    app = FormsApp("forms_service", static_folder=None)  # the package: templates/ and instance/ beside it
    app.request_class = MemoryRequest
    load_settings(app, config)
    # Flask leaves its logger at WARNING outside debug mode; the one line per
    # submission (id, form, outcome, sizes) and per delivery is the operators' record.
    app.logger.setLevel(logging.INFO)
    # Keys are vetted here (a revoked key stops start-up); expiry is checked at each use (openpgp.Keyring).
    app.extensions[extensions.MAIL_SETTINGS] = MailSettings.from_config(app.config, recipients_from_config(app.config))
    init_delivery(app, spool_from_config(app.config))
    app.extensions[extensions.UPLOAD_SLOTS] = UploadSlots(app.config["DATA_DIR"], app.config["UPLOAD_SLOTS"])
    app.extensions[extensions.PUBLIC_HEALTH] = health.PublicHealth()
    app.cli.add_command(spool_cli)
    Mail(app)
    ratelimit.install(app)
    # The site's form template too: a refused form is given back as the site renders it (answers.py).
    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(PROJECT / "overrides")])
    i18n.install(app.jinja_env)
    app.after_request(guard.harden)  # every response, errors and redirects included
    app.register_blueprint(views.bp)
    proxies = app.config["PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app

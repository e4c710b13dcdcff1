"""Settings: safe defaults, FORMS_* environment variables, and start-up checks.

A relay that starts with a missing recipient or an unverified mail server
loses or leaks what people confide, so a bad setting stops start-up with
one line naming it instead of failing on the first submission.
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import Flask

from .fields import FORMS, RESUME_MAX_BYTES
from .i18n import supported_languages
from .static_site import PROJECT

PREFIX = "FORMS"

DEFAULTS = {
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": None,
    "MAIL_ENVELOPE_FROM": None,
    "MAIL_SUPPRESS_SEND": False,  # Flask-Mail would otherwise drop mail silently when TESTING; must stay false
    "MAIL_CA_FILE": None,
    "MAIL_TIMEOUT": 30,
    "MAIL_ALLOW_PLAINTEXT": False,
    # FORMS_<FORM>_RECIPIENTS, one per form of fields.py: required, no default.
    **{form.recipients_setting: None for form in FORMS.values()},
    "URGENT_RECIPIENTS": [],
    "SITE_URL": None,
    "ALLOWED_ORIGINS": None,
    "SECRET_KEY": None,
    "DATA_DIR": None,
    # The built site (`make build` writes it beside the package): a refusal without the script is
    # answered with the form's own page from it (answers.py); without it, with a plain page.
    "SITE_DIR": str(PROJECT / "site"),
    "STAFF_LANGUAGE": "fr",
    "HEALTH_TOKEN": None,  # none: the spool's figures are never shown over HTTP
    "PROXY_COUNT": 0,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": None,  # ratelimit.py: the counters file in DATA_DIR
    "RATELIMIT_DEFAULT": "10 per minute;60 per hour;200 per day",
    "RATELIMIT_REFUSALS": "30 per minute;300 per day",
    "ACK_LIMIT": 3,
    "URGENT_LIMIT": 3,
    "RATELIMIT_HEADERS_ENABLED": True,
    # A storage outage (Redis, a locked counters file) must never stop a person from reaching us.
    "RATELIMIT_SWALLOW_ERRORS": True,
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    # Whole request: the resumé plus generous room for the text fields and multipart framing.
    "MAX_CONTENT_LENGTH": RESUME_MAX_BYTES + 512 * 1024,
    "MAX_FORM_MEMORY_SIZE": 256 * 1024,
    "MAX_FORM_PARTS": 50,
}

MIN_SECRET_LENGTH = 32
# from_prefixed_env keeps what is not valid JSON as a string, so FORMS_MAIL_ALLOW_PLAINTEXT=False
# (Python spelling) would be the true-ish string "False": switches must be real JSON booleans.
SWITCHES = ("MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_ALLOW_PLAINTEXT", "MAIL_SUPPRESS_SEND", "RATELIMIT_ENABLED")
SIZE_LIMITS = ("MAX_CONTENT_LENGTH", "MAX_FORM_MEMORY_SIZE", "MAX_FORM_PARTS")
DAILY_QUOTAS = ("ACK_LIMIT", "URGENT_LIMIT")


class ConfigError(SystemExit):
    """A setting that makes running unsafe or useless.

    A SystemExit so that gunicorn, `flask run` and `python -m` all stop with
    the one-line message rather than a traceback.
    """

    def __init__(self, name: str, problem: str):
        super().__init__(f"forms_service: {PREFIX}_{name} {problem}")
        self.setting = f"{PREFIX}_{name}"


def load(app: Flask, overrides: dict | None) -> None:
    """Fill app.config: defaults, then the environment (or the given mapping, for tests)."""
    app.config.from_mapping(DEFAULTS)
    app.config["DATA_DIR"] = app.instance_path
    if overrides is None:
        app.config.from_prefixed_env(PREFIX)
    else:
        app.config.from_mapping(overrides)
    check(app.config)
    if not app.config["ALLOWED_ORIGINS"]:
        app.config["ALLOWED_ORIGINS"] = [origin_of(app.config["SITE_URL"])]


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as browsers send it in the Origin header."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where plaintext never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(config: dict) -> None:
    """Stop at the first unsafe or missing setting, naming it."""
    _check_secret(config["SECRET_KEY"])
    _check_site_url(config["SITE_URL"])
    for form in FORMS.values():
        _check_addresses(form.recipients_setting, config[form.recipients_setting], required=True)
    _check_addresses("URGENT_RECIPIENTS", config["URGENT_RECIPIENTS"], required=False)
    _check_sender(config["MAIL_DEFAULT_SENDER"])
    if config["MAIL_ENVELOPE_FROM"] is not None and not _is_address(config["MAIL_ENVELOPE_FROM"]):
        raise ConfigError("MAIL_ENVELOPE_FROM", "must be one address (the mailbox that receives bounces), "
                                                "e.g. '\"bounces@example.org\"'")
    for name in SWITCHES:
        if not isinstance(config[name], bool):
            raise ConfigError(name, f"must be true or false (JSON), not {config[name]!r}")
    _check_mail_transport(config)
    _check_credentials(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    _check_origins(config["ALLOWED_ORIGINS"])
    _check_number("MAIL_TIMEOUT", config["MAIL_TIMEOUT"], minimum=1)
    _check_number("PROXY_COUNT", config["PROXY_COUNT"], minimum=0)
    for name in SIZE_LIMITS:
        _check_number(name, config[name], minimum=1)
    for name in DAILY_QUOTAS:
        if isinstance(config[name], bool) or not isinstance(config[name], int) or config[name] < 0:
            raise ConfigError(name, "must be a whole number, 0 or more")
    _check_health_token(config["HEALTH_TOKEN"])
    if config["STAFF_LANGUAGE"] not in supported_languages():
        raise ConfigError("STAFF_LANGUAGE", f"must be one of {', '.join(supported_languages())} "
                                            "(languages with a catalogue)")


def _check_secret(secret: object) -> None:
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError("SECRET_KEY", f"is missing, not text or shorter than {MIN_SECRET_LENGTH} characters: "
                                        "set a long random value, e.g. from `python -c 'import secrets; "
                                        "print(secrets.token_urlsafe(48))'`")


def _check_health_token(token: object) -> None:
    # Sent in an HTTP header: visible ASCII, long enough that guessing is hopeless.
    if token is not None and not (isinstance(token, str) and len(token) >= MIN_SECRET_LENGTH
                                  and token.isascii() and token.isprintable() and " " not in token):
        raise ConfigError("HEALTH_TOKEN", f"must be at least {MIN_SECRET_LENGTH} visible ASCII characters "
                                          "(no spaces), e.g. from `python -c 'import secrets; "
                                          "print(secrets.token_urlsafe(32))'`; or leave it unset")


def _check_site_url(url: object) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("SITE_URL", "is missing or not a URL: set the public address of the site, "
                                      "e.g. https://www.example.org")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError("SITE_URL", "must use https (plain http is only allowed for localhost)")


def _is_address(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _check_addresses(name: str, value: object, *, required: bool) -> None:
    if not isinstance(value, list) or not all(_is_address(item) for item in value):
        raise ConfigError(name, "must be a JSON array of email addresses, e.g. '[\"team@example.org\"]'")
    if required and not value:
        raise ConfigError(name, "is empty: give at least one address")


def _check_sender(sender: object) -> None:
    # Read exactly as compose.py reads it for From and MAIL FROM: an unquoted comma in the
    # name ("Forms, Geneva <f@x>") makes parseaddr see another address, and every email bounce.
    address = email.utils.parseaddr(sender)[1] if isinstance(sender, str) else None
    if not _is_address(address):
        raise ConfigError("MAIL_DEFAULT_SENDER", "is missing or not an address: set e.g. "
                                                 "'\"CoCreate Humanity <forms@example.org>\"'")


def _check_mail_transport(config: dict) -> None:
    if config["MAIL_SUPPRESS_SEND"]:
        raise ConfigError("MAIL_SUPPRESS_SEND", "is true: every email would be dropped, and counted as delivered")
    port = config["MAIL_PORT"]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError("MAIL_PORT", f"must be a port number (1 to 65535), not {port!r}")
    if config["MAIL_USE_TLS"] and config["MAIL_USE_SSL"]:
        raise ConfigError("MAIL_USE_SSL", "and FORMS_MAIL_USE_TLS are both true: choose one")
    encrypted = config["MAIL_USE_TLS"] or config["MAIL_USE_SSL"]
    if not encrypted and not config["MAIL_ALLOW_PLAINTEXT"] and not is_loopback(str(config["MAIL_SERVER"])):
        raise ConfigError("MAIL_SERVER", "is not on this machine and neither FORMS_MAIL_USE_TLS nor "
                                         "FORMS_MAIL_USE_SSL is true (set FORMS_MAIL_ALLOW_PLAINTEXT=true "
                                         "only if plaintext is really intended)")
    ca_file = config["MAIL_CA_FILE"]
    if ca_file is not None and not (isinstance(ca_file, str) and os.access(ca_file, os.R_OK)):
        raise ConfigError("MAIL_CA_FILE", f"is not a readable file: {ca_file!r}")


def _check_credentials(username: object, password: object) -> None:
    """Both or neither: Flask-Mail silently skips AUTH when one is empty, and the
    server's refusal would then make every message dead instead of stopping here."""
    for name, value in (("MAIL_USERNAME", username), ("MAIL_PASSWORD", password)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(name, "must be text: quote it as a JSON string, e.g. '\"123456\"'")
    if bool(username) != bool(password):
        missing = "MAIL_PASSWORD" if username else "MAIL_USERNAME"
        raise ConfigError(missing, "is empty while the other SMTP credential is set: give both, or neither")


def _check_origins(origins: object) -> None:
    if origins is None:
        return
    if not isinstance(origins, list) or not all(
        isinstance(item, str) and item == origin_of(item) for item in origins
    ):
        raise ConfigError("ALLOWED_ORIGINS", "must be a JSON array of origins such as "
                                             "'[\"https://www.example.org\"]' (scheme and host, no path)")


def _check_number(name: str, value: object, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(name, f"must be a number of at least {minimum}")

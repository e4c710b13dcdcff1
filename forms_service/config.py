"""Settings: each FORMS_* setting declared once (default and check), read from the environment, checked at
start-up: a relay that starts with a missing recipient or an unverified mail server loses or leaks what people
confide, so a bad setting stops start-up with one line naming it instead of failing on the first submission.
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import Flask
from limits import parse_many

from .fields import FORMS, RESUME_MAX_BYTES
from .i18n import supported_languages
from .static_site import PROJECT

PREFIX = "FORMS"

REQUIRED = object()
"""The default of a setting the operator must give."""


@dataclass(frozen=True)
class Setting:
    """One FORMS_* setting, declared once: name (without FORMS_), default, check.

    `check(name, value)` raises ConfigError for a value that makes running unsafe or useless; it runs on the
    value after the defaults and the environment (None: not set, where the default is None). `shown`: how
    README's settings table states a default worked out from other settings (tests compare the table, and
    deploy/.env.example, with these declarations). `internal`: a library switch the service sets for
    safety, listed in .env.example but not in README's table.
    """

    name: str
    default: object = None
    check: Callable[[str, object], None] | None = None
    shown: str | None = None
    internal: bool = False


def _whole_bytes(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(name, "must be a whole number of bytes, e.g. 1073741824 for 1 GB")


def _switch(name: str, value: object) -> None:
    # from_prefixed_env keeps what is not valid JSON as a string, so FORMS_MAIL_ALLOW_PLAINTEXT=False
    # (Python spelling) would be the true-ish string "False": switches must be real JSON booleans.
    if not isinstance(value, bool):
        raise ConfigError(name, f"must be true or false (JSON), not {value!r}")


def _at_least(minimum: float) -> Callable[[str, object], None]:
    def check(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ConfigError(name, f"must be a number of at least {minimum}")

    return check


def _whole(minimum: int) -> Callable[[str, object], None]:
    def check(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(name, f"must be a whole number, {minimum} or more")

    return check


def _seconds(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigError(name, "must be a number of seconds greater than 0")


def _optional_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(name, "must be text: quote it as a JSON string, e.g. '\"123456\"'")


def _limits(name: str, value: object) -> None:
    """Flask-Limiter would only log a limit it cannot parse, and then limit nothing."""
    try:
        parse_many(value)
    except (ValueError, TypeError):
        raise ConfigError(name, "is not a list of limits such as '10 per minute;60 per hour;200 per day'") from None


def _recipients(required: bool) -> Callable[[str, object], None]:
    def check(name: str, value: object) -> None:
        _check_addresses(name, value, required=required)

    return check


def _envelope_from(name: str, value: object) -> None:
    if value is not None and not _is_address(value):
        raise ConfigError(
            name, "must be one address (the mailbox that receives bounces), e.g. '\"bounces@example.org\"'"
        )


def _staff_language(name: str, value: object) -> None:
    if value not in supported_languages():
        raise ConfigError(name, f"must be one of {', '.join(supported_languages())} (languages with a catalogue)")


def _port(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(name, f"must be a port number (1 to 65535), not {value!r}")


def _readable_file(name: str, value: object) -> None:
    if value is not None and not (isinstance(value, str) and os.access(value, os.R_OK)):
        raise ConfigError(name, f"is not a readable file: {value!r}")


def _never(name: str, value: object) -> None:
    if value:
        raise ConfigError(name, "is true: every email would be dropped, and counted as delivered")


SETTINGS = (
    Setting("SECRET_KEY", REQUIRED, lambda name, value: _check_secret(value)),
    Setting("SITE_URL", REQUIRED, lambda name, value: _check_site_url(value)),
    # FORMS_<FORM>_RECIPIENTS, one per form of fields.py.
    *(Setting(form.recipients_setting, REQUIRED, _recipients(required=True)) for form in FORMS.values()),
    Setting("URGENT_RECIPIENTS", [], _recipients(required=False)),
    Setting("ALLOWED_ORIGINS", None, lambda name, value: _check_origins(value), shown="origin of `FORMS_SITE_URL`"),
    Setting("DATA_DIR", None, shown="`instance/`"),  # Flask's instance folder, worked out at load
    # The built site: a refusal without the script is answered with the form's own page from it
    # (answers.py); without it, with a plain page. `make build` writes it beside the package, in each release.
    Setting("SITE_DIR", None, _optional_text, shown="`site/` beside `forms_service/`"),  # worked out at load
    Setting("SPOOL_KEY", None, shown="required (or `FORMS_SPOOL_KEY_FILE`)"),  # the keys are read by spool/keys.py
    Setting("SPOOL_KEY_FILE", None, _optional_text),
    Setting("PGP_KEYS", None),  # the certificates are read and vetted by openpgp.py
    Setting("RETRY_BASE_SECONDS", 60, _seconds),
    Setting("RETRY_MAX_SECONDS", 3600, _seconds),
    Setting("MAX_AGE_SECONDS", 5 * 24 * 3600, _seconds, shown="`432000` (5 days)"),
    # Half the lease must outlast one send (several SMTP commands, each up to MAIL_TIMEOUT).
    Setting("SPOOL_LEASE_SECONDS", None, _seconds, shown="10 × `FORMS_MAIL_TIMEOUT`"),
    # What the spool may hold on disk, and the part of it only forms with uses_reserve may fill (spool.SpoolBounds).
    Setting("SPOOL_MAX_BYTES", 1024 * 1024 * 1024, _whole_bytes, shown="`1073741824` (1 GB)"),
    Setting("SPOOL_RESERVE_BYTES", 64 * 1024 * 1024, _whole_bytes, shown="`67108864` (64 MB)"),
    Setting("STAFF_LANGUAGE", "fr", _staff_language),
    Setting("HEALTH_TOKEN", None, lambda name, value: _check_health_token(value)),  # unset: no figures over HTTP
    Setting("PROXY_COUNT", 0, _at_least(0)),
    # Uploads worked on at once by every worker of the host (upload_slots.py): below gunicorn's --workers,
    # and each may take a core for seconds: one leaves a 2-core host a core for requests for help.
    Setting("UPLOAD_SLOTS", 1, _whole(1)),
    Setting("MAIL_SERVER", "localhost"),
    Setting("MAIL_PORT", 25, _port),
    Setting("MAIL_USE_TLS", False, _switch),
    Setting("MAIL_USE_SSL", False, _switch),
    Setting("MAIL_USERNAME", None, _optional_text),
    Setting("MAIL_PASSWORD", None, _optional_text),
    Setting("MAIL_DEFAULT_SENDER", REQUIRED, lambda name, value: _check_sender(value)),
    Setting("MAIL_ENVELOPE_FROM", None, _envelope_from, shown="address of `FORMS_MAIL_DEFAULT_SENDER`"),
    Setting("MAIL_CA_FILE", None, _readable_file, shown="system store"),
    Setting("MAIL_TIMEOUT", 30, _at_least(1)),
    Setting("MAIL_ALLOW_PLAINTEXT", False, _switch),
    # Flask-Mail would otherwise drop mail silently when TESTING; must stay false.
    Setting("MAIL_SUPPRESS_SEND", False, _never, internal=True),
    Setting("RATELIMIT_ENABLED", True, _switch),
    Setting("RATELIMIT_DEFAULT", "10 per minute;60 per hour;200 per day", _limits),
    # An IPv6 client's /48 (one site, or a tunnel broker's free allocation of 65,536 /64s) on top of its /64.
    Setting("RATELIMIT_NETWORK", "30 per minute;180 per hour;600 per day", _limits),
    Setting("RATELIMIT_REFUSALS", "30 per minute;300 per day", _limits),
    Setting("RATELIMIT_STORAGE_URI", None, _optional_text, shown="`FORMS_DATA_DIR/counters.sqlite3`"),
    Setting("ACK_LIMIT", 3, _whole(0)),
    Setting("URGENT_LIMIT", 3, _whole(0)),
    Setting("RATELIMIT_HEADERS_ENABLED", True, _switch, internal=True),
    # A storage outage (Redis, a locked counters file) must never stop a person from reaching us.
    Setting("RATELIMIT_SWALLOW_ERRORS", True, _switch, internal=True),
    Setting("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True, _switch, internal=True),
    # Whole request: the CV plus generous room for the text fields and multipart framing.
    Setting("MAX_CONTENT_LENGTH", RESUME_MAX_BYTES + 512 * 1024, _at_least(1), shown="5 MB + 512 KB"),
    Setting("MAX_FORM_MEMORY_SIZE", 256 * 1024, _at_least(1), shown="256 KB"),
    Setting("MAX_FORM_PARTS", 50, _at_least(1)),
)
DEFAULTS = MappingProxyType(
    {setting.name: None if setting.default is REQUIRED else setting.default for setting in SETTINGS}
)


MIN_SECRET_LENGTH = 32


class ConfigError(SystemExit):
    """A setting that makes running unsafe or useless: a SystemExit, so that gunicorn, `flask run` and
    `python -m` all stop with the one-line message rather than a traceback."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"forms_service: {PREFIX}_{name} {problem}")
        self.setting = f"{PREFIX}_{name}"


def load(app: Flask, overrides: dict | None) -> None:
    """Fill app.config: defaults, then the environment (or the given mapping, for tests)."""
    app.config.from_mapping(DEFAULTS)
    app.config["DATA_DIR"] = app.instance_path
    app.config["SITE_DIR"] = str(PROJECT / "site")
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
    """Stop at the first unsafe or missing setting, naming it: each on its own, then those
    that only make sense together."""
    for setting in SETTINGS:
        if setting.check:
            setting.check(setting.name, config[setting.name])
    _check_mail_transport(config)
    _check_credentials(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    if config["RETRY_BASE_SECONDS"] > config["RETRY_MAX_SECONDS"]:
        raise ConfigError("RETRY_BASE_SECONDS", "must not exceed FORMS_RETRY_MAX_SECONDS")
    if config["SPOOL_RESERVE_BYTES"] >= config["SPOOL_MAX_BYTES"]:
        raise ConfigError("SPOOL_RESERVE_BYTES", "must be less than FORMS_SPOOL_MAX_BYTES (it is a part of it)")


def _check_secret(secret: object) -> None:
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            "SECRET_KEY",
            f"is missing, not text or shorter than {MIN_SECRET_LENGTH} characters: "
            "set a long random value, e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`",
        )


def _check_health_token(token: object) -> None:
    # Sent in an HTTP header: visible ASCII, long enough that guessing is hopeless.
    if token is not None and not (
        isinstance(token, str)
        and len(token) >= MIN_SECRET_LENGTH
        and token.isascii()
        and token.isprintable()
        and " " not in token
    ):
        raise ConfigError(
            "HEALTH_TOKEN",
            f"must be at least {MIN_SECRET_LENGTH} visible ASCII characters "
            "(no spaces), e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`; or leave it unset",
        )


def _check_site_url(url: object) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(
            "SITE_URL", "is missing or not a URL: set the public address of the site, e.g. https://www.example.org"
        )
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
        raise ConfigError(
            "MAIL_DEFAULT_SENDER", "is missing or not an address: set e.g. '\"CoCreate Humanity <forms@example.org>\"'"
        )


def _check_mail_transport(config: dict) -> None:
    if config["MAIL_USE_TLS"] and config["MAIL_USE_SSL"]:
        raise ConfigError("MAIL_USE_SSL", "and FORMS_MAIL_USE_TLS are both true: choose one")
    encrypted = config["MAIL_USE_TLS"] or config["MAIL_USE_SSL"]
    if not encrypted and not config["MAIL_ALLOW_PLAINTEXT"] and not is_loopback(str(config["MAIL_SERVER"])):
        raise ConfigError(
            "MAIL_SERVER",
            "is not on this machine and neither FORMS_MAIL_USE_TLS nor "
            "FORMS_MAIL_USE_SSL is true (set FORMS_MAIL_ALLOW_PLAINTEXT=true "
            "only if plaintext is really intended)",
        )


def _check_credentials(username: object, password: object) -> None:
    """Both or neither: Flask-Mail silently skips AUTH when one is empty, and the
    server's refusal would then make every message dead instead of stopping here."""
    if bool(username) != bool(password):
        missing = "MAIL_PASSWORD" if username else "MAIL_USERNAME"
        raise ConfigError(missing, "is empty while the other SMTP credential is set: give both, or neither")


def _check_origins(origins: object) -> None:
    if origins is None:
        return
    if not isinstance(origins, list) or not all(isinstance(item, str) and item == origin_of(item) for item in origins):
        raise ConfigError(
            "ALLOWED_ORIGINS",
            "must be a JSON array of origins such as '[\"https://www.example.org\"]' (scheme and host, no path)",
        )

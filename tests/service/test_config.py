"""Start-up stops with one clear line naming a missing or unsafe setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from forms_service.app import create_app
from forms_service.config import ConfigError, load
from forms_service.counters import COUNTERS_FILE_NAME
from forms_service.fields import FORMS
from forms_service.outgoing import OutgoingMail
from forms_service.spool import SPOOL_FILE_NAME, Sealer, Spool
from harness.gunicorn import DOCUMENTED_OPTIONS, FORMS_APP, GUNICORN, LOOPBACK_OPTIONS, Gunicorn, service_environment
from harness.settings import service_settings

# What the data folder may hold: databases and their companions, never a key.
DATA_FILES = {f"{name}{suffix}" for name in (SPOOL_FILE_NAME, COUNTERS_FILE_NAME) for suffix in ("", "-wal", "-shm")}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"SECRET_KEY": None}, "FORMS_SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "FORMS_SECRET_KEY"),
        ({"SITE_URL": None}, "FORMS_SITE_URL"),
        ({"SITE_URL": "http://www.example.org"}, "FORMS_SITE_URL"),
        ({"SITE_URL": "ftp://x"}, "FORMS_SITE_URL"),
        ({"VOLUNTEER_RECIPIENTS": None}, "FORMS_VOLUNTEER_RECIPIENTS"),
        ({"VOLUNTEER_RECIPIENTS": "team@example.org"}, "FORMS_VOLUNTEER_RECIPIENTS"),
        ({"SUPPORT_RECIPIENTS": []}, "FORMS_SUPPORT_RECIPIENTS"),
        ({"SUPPORT_RECIPIENTS": ["not an address"]}, "FORMS_SUPPORT_RECIPIENTS"),
        ({"URGENT_RECIPIENTS": ["x"]}, "FORMS_URGENT_RECIPIENTS"),
        ({"MAIL_DEFAULT_SENDER": None}, "FORMS_MAIL_DEFAULT_SENDER"),
        ({"MAIL_ENVELOPE_FROM": "Bounces <bounces@example.org>"}, "FORMS_MAIL_ENVELOPE_FROM"),
        ({"MAIL_DEFAULT_SENDER": "CoCreate Humanity, Geneva <forms@example.org>"}, "FORMS_MAIL_DEFAULT_SENDER"),
        ({"MAIL_USE_SSL": True}, "FORMS_MAIL_USE_SSL"),
        (
            {"MAIL_USE_TLS": False, "MAIL_SERVER": "smtp.example.org", "MAIL_ALLOW_PLAINTEXT": False},
            "FORMS_MAIL_SERVER",
        ),
        ({"MAIL_CA_FILE": "/nonexistent/ca.pem"}, "FORMS_MAIL_CA_FILE"),
        ({"MAIL_TIMEOUT": 0}, "FORMS_MAIL_TIMEOUT"),
        ({"MAIL_TIMEOUT": "30"}, "FORMS_MAIL_TIMEOUT"),
        ({"ALLOWED_ORIGINS": ["https://site.test/path"]}, "FORMS_ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "https://site.test"}, "FORMS_ALLOWED_ORIGINS"),
        ({"STAFF_LANGUAGE": "xx"}, "FORMS_STAFF_LANGUAGE"),
        ({"HEALTH_TOKEN": "too-short-a-token"}, "FORMS_HEALTH_TOKEN"),
        ({"HEALTH_TOKEN": ""}, "FORMS_HEALTH_TOKEN"),
        ({"HEALTH_TOKEN": 10**40}, "FORMS_HEALTH_TOKEN"),
        ({"HEALTH_TOKEN": "a token with spaces that is long enough"}, "FORMS_HEALTH_TOKEN"),
        ({"HEALTH_TOKEN": "é" * 40}, "FORMS_HEALTH_TOKEN"),
        ({"PROXY_COUNT": -1}, "FORMS_PROXY_COUNT"),
        ({"DATA_DIR": "/dev/null/data"}, "FORMS_DATA_DIR"),
        ({"SPOOL_KEY": "not a key"}, "FORMS_SPOOL_KEY"),
        ({"RETRY_BASE_SECONDS": 0}, "FORMS_RETRY_BASE_SECONDS"),
        ({"RETRY_BASE_SECONDS": 7200, "RETRY_MAX_SECONDS": 3600}, "FORMS_RETRY_BASE_SECONDS"),
        ({"MAX_AGE_SECONDS": "5d"}, "FORMS_MAX_AGE_SECONDS"),
        ({"SPOOL_LEASE_SECONDS": 0}, "FORMS_SPOOL_LEASE_SECONDS"),
        ({"SPOOL_LEASE_SECONDS": -1}, "FORMS_SPOOL_LEASE_SECONDS"),
        ({"RETRY_MAX_SECONDS": "soon"}, "FORMS_RETRY_MAX_SECONDS"),
        ({"MAX_AGE_SECONDS": True}, "FORMS_MAX_AGE_SECONDS"),
        ({"PGP_KEYS": ["/nonexistent/key.asc"]}, "FORMS_PGP_KEYS"),
        ({"SECRET_KEY": 12345678901234567890123456789012345}, "FORMS_SECRET_KEY"),
        ({"MAIL_USE_TLS": "false"}, "FORMS_MAIL_USE_TLS"),
        ({"MAIL_ALLOW_PLAINTEXT": "False"}, "FORMS_MAIL_ALLOW_PLAINTEXT"),
        ({"RATELIMIT_ENABLED": "no"}, "FORMS_RATELIMIT_ENABLED"),
        ({"MAIL_SUPPRESS_SEND": True}, "FORMS_MAIL_SUPPRESS_SEND"),
        ({"MAIL_PORT": "smtp"}, "FORMS_MAIL_PORT"),
        ({"MAIL_PORT": 70000}, "FORMS_MAIL_PORT"),
        ({"MAIL_PASSWORD": ""}, "FORMS_MAIL_PASSWORD"),
        ({"MAIL_USERNAME": None}, "FORMS_MAIL_USERNAME"),
        ({"MAIL_PASSWORD": 123456}, "FORMS_MAIL_PASSWORD"),
        ({"MAX_CONTENT_LENGTH": "5 MB"}, "FORMS_MAX_CONTENT_LENGTH"),
        ({"MAX_FORM_PARTS": 0}, "FORMS_MAX_FORM_PARTS"),
        ({"RATELIMIT_DEFAULT": "10 per fortnight"}, "FORMS_RATELIMIT_DEFAULT"),
        ({"RATELIMIT_REFUSALS": "many"}, "FORMS_RATELIMIT_REFUSALS"),
        ({"ACK_LIMIT": -1}, "FORMS_ACK_LIMIT"),
        ({"URGENT_LIMIT": "3"}, "FORMS_URGENT_LIMIT"),
        ({"RATELIMIT_STORAGE_URI": "sqlite:///proc/forms/counters.sqlite3"}, "FORMS_RATELIMIT_STORAGE_URI"),
        ({"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "nosuch://127.0.0.1"}, "FORMS_RATELIMIT_STORAGE_URI"),
    ],
)
def test_bad_setting_stops_start_up_naming_it(app_config, overrides, setting):
    with pytest.raises(ConfigError) as stopped:
        create_app({**app_config, **overrides})
    message = str(stopped.value)
    assert stopped.value.setting == setting
    assert message.startswith(f"forms_service: {setting} ")
    assert "\n" not in message


def test_plaintext_to_remote_host_is_allowed_only_when_explicit(app_config):
    app = create_app(
        {**app_config, "MAIL_USE_TLS": False, "MAIL_SERVER": "smtp.example.org", "MAIL_ALLOW_PLAINTEXT": True}
    )
    assert app.config["MAIL_ALLOW_PLAINTEXT"] is True


def test_create_app_takes_the_settings_as_config(app_config, monkeypatch):
    """The documented interface: create_app(config=None); with a mapping, FORMS_* variables are ignored."""
    monkeypatch.setenv("FORMS_SITE_URL", "https://ignored.example")
    app = create_app(config=app_config)
    assert app.config["SITE_URL"] == "https://site.test"


def test_data_dir_defaults_to_the_instance_folder(app_config):
    """Checked on the settings alone: a whole app would create its spool inside the repository."""
    app = Flask("forms_service")
    load(app, {key: value for key, value in app_config.items() if key != "DATA_DIR"})
    assert app.config["DATA_DIR"] == app.instance_path and app.instance_path.endswith("/instance")


def test_allowed_origins_default_to_the_site(app_config):
    app = create_app({**app_config, "ALLOWED_ORIGINS": None, "SITE_URL": "https://www.example.org/"})
    assert app.config["ALLOWED_ORIGINS"] == ["https://www.example.org"]


def test_gunicorn_halts_when_no_key_opens_the_spool(tmp_path):
    """A lost key (or one dropped before re-sealing): the documented gunicorn stops with status 4
    and one line, instead of making a key or marking every message dead; nothing is changed."""
    data_dir = tmp_path / "data"
    lost = Spool(data_dir / SPOOL_FILE_NAME, Sealer([Fernet.generate_key()]))
    lost.accept(
        "sub",
        [
            OutgoingMail("<lost.1@forms.test>", "forms@example.org", ("s@example.org",), b"x"),
            OutgoingMail("<lost.2@forms.test>", "forms@example.org", ("s@example.org",), b"x"),
        ],
    )
    env = {**service_environment(), **valid_environment(data_dir)}
    result = subprocess.run(
        [str(GUNICORN), FORMS_APP, "--bind", "127.0.0.1:0", *DOCUMENTED_OPTIONS, *LOOPBACK_OPTIONS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if "FORMS_" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"forms_service: FORMS_SPOOL_KEY does not open 2 of the 2 messages in {data_dir}")
    assert "Traceback" not in result.stderr
    assert (lost.stats().queued, lost.stats().dead) == (2, 0)
    assert {path.name for path in data_dir.iterdir()} <= DATA_FILES  # no key appeared


def test_production_start_writes_no_key_into_the_data_folder(smtp_server, smtp_ca_file, tmp_path):
    """The documented gunicorn, settings as production gives them: the data folder holds no key."""
    data_dir = tmp_path / "data"
    with Gunicorn(settings=service_settings(smtp_server.mail_config(), smtp_ca_file, data_dir)) as server:
        assert server.get("/forms/healthz")[0] == 200
        names = {path.name for path in data_dir.iterdir()}
    assert SPOOL_FILE_NAME in names and names <= DATA_FILES


def run_wsgi(env: dict) -> subprocess.CompletedProcess:
    clean = service_environment()
    return subprocess.run(
        [sys.executable, "-c", "import forms_service.wsgi"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wsgi_reads_the_environment_and_starts(smtp_ca_file, tmp_path):
    result = run_wsgi({**valid_environment(tmp_path / "data"), "FORMS_MAIL_CA_FILE": smtp_ca_file})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


SPOOL_KEY = Fernet.generate_key().decode()


def valid_environment(data_dir) -> dict:
    """FORMS_* variables of a complete, safe deployment, written as an operator would."""
    return {
        "FORMS_DATA_DIR": str(data_dir),
        "FORMS_SECRET_KEY": "x" * 40,
        "FORMS_SITE_URL": "https://www.example.org",
        **{f"FORMS_{form.recipients_setting}": f'["{form.name}@example.org"]' for form in FORMS.values()},
        "FORMS_MAIL_DEFAULT_SENDER": "Forms <forms@example.org>",
        "FORMS_MAIL_SERVER": "smtp.example.org",
        "FORMS_MAIL_PORT": "587",
        "FORMS_MAIL_USE_TLS": "true",
        "FORMS_MAIL_USERNAME": "forms@example.org",
        "FORMS_MAIL_PASSWORD": "s3cret-password",
        "FORMS_SPOOL_KEY": SPOOL_KEY,
    }


# (variables changed from valid_environment, the setting the one line must name); None unsets.
ENVIRONMENT_REFUSALS = {
    "secret-unset": ({"FORMS_SECRET_KEY": None}, "FORMS_SECRET_KEY"),
    "secret-short": ({"FORMS_SECRET_KEY": "change-me"}, "FORMS_SECRET_KEY"),
    "site-http": ({"FORMS_SITE_URL": "http://www.example.org"}, "FORMS_SITE_URL"),
    "plaintext-remote": ({"FORMS_MAIL_USE_TLS": "false"}, "FORMS_MAIL_SERVER"),
    "python-false": (
        {"FORMS_MAIL_USE_TLS": "false", "FORMS_MAIL_ALLOW_PLAINTEXT": "False"},
        "FORMS_MAIL_ALLOW_PLAINTEXT",
    ),
    "no-support-recipient": ({"FORMS_SUPPORT_RECIPIENTS": "[]"}, "FORMS_SUPPORT_RECIPIENTS"),
    "recipient-not-a-list": ({"FORMS_VOLUNTEER_RECIPIENTS": "v@example.org"}, "FORMS_VOLUNTEER_RECIPIENTS"),
    "password-left-blank": ({"FORMS_MAIL_PASSWORD": ""}, "FORMS_MAIL_PASSWORD"),
    "port-not-a-number": ({"FORMS_MAIL_PORT": "submission"}, "FORMS_MAIL_PORT"),
    "bad-pgp-key": ({"FORMS_PGP_KEYS": '["/nonexistent/readers.asc"]'}, "FORMS_PGP_KEYS"),
    "bad-spool-key": ({"FORMS_SPOOL_KEY": "not-a-fernet-key"}, "FORMS_SPOOL_KEY"),
    "spool-key-unset": ({"FORMS_SPOOL_KEY": None}, "FORMS_SPOOL_KEY"),
    "spool-key-left-blank": ({"FORMS_SPOOL_KEY": ""}, "FORMS_SPOOL_KEY"),
    "spool-key-file-in-data-dir": (
        {"FORMS_SPOOL_KEY": None, "FORMS_SPOOL_KEY_FILE": "{data_dir}/spool.key"},
        "FORMS_SPOOL_KEY_FILE",
    ),
    "data-dir-unwritable": ({"FORMS_DATA_DIR": "{blocker}/data"}, "FORMS_DATA_DIR"),
    "unknown-limiter-storage": ({"FORMS_RATELIMIT_STORAGE_URI": "nosuch://127.0.0.1"}, "FORMS_RATELIMIT_STORAGE_URI"),
}


# Imports the WSGI module in one forked child per case, each with its own environment:
# the real start-up path, without paying the interpreter start and imports per case.
START_EACH = """
import json, os, sys
import forms_service
results = {}
for case, env in json.load(sys.stdin).items():
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.dup2(writer, 2)
        os.environ.clear()
        os.environ.update(env)
        try:
            from forms_service.wsgi import app
        except SystemExit as stop:
            sys.stderr.flush()
            os._exit(stop.code if isinstance(stop.code, int) else 1)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as stderr:
        message = stderr.read()
    results[case] = [os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), message]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def environment_refusals(tmp_path_factory) -> dict[str, list]:
    """[exit status, stderr] of a start-up per case of ENVIRONMENT_REFUSALS."""
    folder = tmp_path_factory.mktemp("refusals")
    blocker = folder / "a-file"
    blocker.write_text("")  # a DATA_DIR below a file cannot be created, even by root
    clean = service_environment()
    cases = {}
    for case, (changes, _) in ENVIRONMENT_REFUSALS.items():
        env = {**clean, **valid_environment(folder / case)}
        for key, value in changes.items():
            env.pop(key) if value is None else env.__setitem__(
                key, value.format(blocker=blocker, data_dir=folder / case)
            )
        cases[case] = env
    result = subprocess.run(
        [sys.executable, "-c", START_EACH],
        cwd=ROOT,
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("case", ENVIRONMENT_REFUSALS)
def test_unsafe_environment_stops_start_up_with_one_line_naming_it(environment_refusals, case):
    status, stderr = environment_refusals[case]
    setting = ENVIRONMENT_REFUSALS[case][1]
    assert status == 4, stderr  # gunicorn's "application failed to load": it halts, no respawn loop
    assert stderr.startswith(f"forms_service: {setting} ")
    assert stderr.count("\n") == 1 and stderr.endswith("\n")
    assert "s3cret-password" not in stderr


PARSED = """
import json
from forms_service.app import create_app
app = create_app()
mail, spool = app.extensions["mail"], app.extensions["forms_spool"]
limiter = next(iter(app.extensions["limiter"]))
print(json.dumps({
    "port": mail.port, "tls": mail.use_tls, "timeout": app.config["MAIL_TIMEOUT"],
    "urgent": app.config["URGENT_RECIPIENTS"], "origins": app.config["ALLOWED_ORIGINS"],
    "retry": [spool.policy.base_seconds, spool.policy.max_seconds, spool.policy.max_age_seconds],
    "storage": type(limiter._storage).__name__, "limits": app.config["RATELIMIT_DEFAULT"],
}))
"""


def test_environment_values_are_parsed_as_json(tmp_path):
    """Numbers, booleans and lists reach Flask-Mail, the spool and Flask-Limiter with their JSON types."""
    clean = service_environment()
    env = {
        **clean,
        **valid_environment(tmp_path / "data"),
        "FORMS_MAIL_SERVER": "127.0.0.1",
        "FORMS_MAIL_PORT": "2525",
        "FORMS_MAIL_USE_TLS": "false",
        "FORMS_MAIL_TIMEOUT": "7",
        "FORMS_URGENT_RECIPIENTS": '["duty@example.org", "lead@example.org"]',
        "FORMS_ALLOWED_ORIGINS": '["https://www.example.org", "https://example.org"]',
        "FORMS_RETRY_BASE_SECONDS": "2.5",
        "FORMS_RETRY_MAX_SECONDS": "30",
        "FORMS_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0",
        "FORMS_RATELIMIT_DEFAULT": "5 per minute",
    }
    result = subprocess.run(
        [sys.executable, "-c", PARSED], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "port": 2525,
        "tls": False,
        "timeout": 7,
        "urgent": ["duty@example.org", "lead@example.org"],
        "origins": ["https://www.example.org", "https://example.org"],
        "retry": [2.5, 30.0, 5 * 24 * 3600.0],
        "storage": "RedisStorage",
        "limits": "5 per minute",
    }


def test_wsgi_without_settings_stops_with_one_line():
    result = run_wsgi({})
    assert result.returncode == 4  # gunicorn's "application failed to load": it halts, no respawn loop
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("forms_service: FORMS_SECRET_KEY ")

"""Start-up stops with one clear line naming a missing or unsafe setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forms_service import create_app
from forms_service.config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(("overrides", "setting"), [
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
    ({"MAIL_USE_SSL": True}, "FORMS_MAIL_USE_SSL"),
    ({"MAIL_USE_TLS": False, "MAIL_SERVER": "smtp.example.org", "MAIL_ALLOW_PLAINTEXT": False}, "FORMS_MAIL_SERVER"),
    ({"MAIL_CA_FILE": "/nonexistent/ca.pem"}, "FORMS_MAIL_CA_FILE"),
    ({"MAIL_TIMEOUT": 0}, "FORMS_MAIL_TIMEOUT"),
    ({"MAIL_TIMEOUT": "30"}, "FORMS_MAIL_TIMEOUT"),
    ({"ALLOWED_ORIGINS": ["https://site.test/path"]}, "FORMS_ALLOWED_ORIGINS"),
    ({"ALLOWED_ORIGINS": "https://site.test"}, "FORMS_ALLOWED_ORIGINS"),
    ({"STAFF_LANGUAGE": "xx"}, "FORMS_STAFF_LANGUAGE"),
    ({"PROXY_COUNT": -1}, "FORMS_PROXY_COUNT"),
    ({"DATA_DIR": "/dev/null/data"}, "FORMS_DATA_DIR"),
    ({"SPOOL_KEY": "not a key"}, "FORMS_SPOOL_KEY"),
    ({"RETRY_BASE_SECONDS": 0}, "FORMS_RETRY_BASE_SECONDS"),
    ({"RETRY_BASE_SECONDS": 7200, "RETRY_MAX_SECONDS": 3600}, "FORMS_RETRY_BASE_SECONDS"),
    ({"MAX_AGE_SECONDS": "5d"}, "FORMS_MAX_AGE_SECONDS"),
    ({"SPOOL_LEASE_SECONDS": 0}, "FORMS_SPOOL_LEASE_SECONDS"),
    ({"PGP_KEYS": ["/nonexistent/key.asc"]}, "FORMS_PGP_KEYS"),
])
def test_bad_setting_stops_start_up_naming_it(app_config, overrides, setting):
    with pytest.raises(ConfigError) as stopped:
        create_app({**app_config, **overrides})
    message = str(stopped.value)
    assert stopped.value.setting == setting
    assert message.startswith(f"forms_service: {setting} ")
    assert "\n" not in message


def test_plaintext_to_remote_host_is_allowed_only_when_explicit(app_config):
    app = create_app({**app_config, "MAIL_USE_TLS": False, "MAIL_SERVER": "smtp.example.org",
                      "MAIL_ALLOW_PLAINTEXT": True})
    assert app.config["MAIL_ALLOW_PLAINTEXT"] is True


def test_allowed_origins_default_to_the_site(app_config):
    app = create_app({**app_config, "ALLOWED_ORIGINS": None, "SITE_URL": "https://www.example.org/"})
    assert app.config["ALLOWED_ORIGINS"] == ["https://www.example.org"]


def test_gunicorn_halts_on_a_bad_setting():
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FORMS_")}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "forms_service.wsgi:app"],
                            cwd=ROOT, env=clean, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "FORMS_" in line]
    assert lines and lines[0].startswith("forms_service: FORMS_SECRET_KEY ")
    assert "Traceback" not in result.stderr


def run_wsgi(env: dict) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FORMS_")}
    return subprocess.run([sys.executable, "-c", "import forms_service.wsgi"], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_wsgi_reads_the_environment_and_starts(smtp_ca_file, tmp_path):
    result = run_wsgi({
        "FORMS_DATA_DIR": str(tmp_path / "data"),
        "FORMS_SECRET_KEY": "x" * 40, "FORMS_SITE_URL": "https://www.example.org",
        "FORMS_VOLUNTEER_RECIPIENTS": '["v@example.org"]', "FORMS_SUPPORT_RECIPIENTS": '["s@example.org"]',
        "FORMS_MAIL_DEFAULT_SENDER": "Forms <forms@example.org>", "FORMS_MAIL_SERVER": "smtp.example.org",
        "FORMS_MAIL_PORT": "587", "FORMS_MAIL_USE_TLS": "true", "FORMS_MAIL_CA_FILE": smtp_ca_file,
    })
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_wsgi_without_settings_stops_with_one_line():
    result = run_wsgi({})
    assert result.returncode == 4  # gunicorn's "application failed to load": it halts, no respawn loop
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("forms_service: FORMS_SECRET_KEY ")

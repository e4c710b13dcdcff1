"""Complete service settings and valid form posts: what the tests, the fault rig and the
benchmarks all start from, so each changes only what it is about."""

from __future__ import annotations

import io

from cryptography.fernet import Fernet

from forms_service.fields import FORMS
from harness import samples

JSON = {"Accept": "application/json"}
SITE = {"Origin": "https://site.test"}
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
TEST_HEALTH_TOKEN = "test-health-token-for-the-operators-monitoring"
OPERATOR = {"Authorization": f"Bearer {TEST_HEALTH_TOKEN}"}  # how monitoring asks healthz for the figures


def service_settings(mail_config: dict, ca_file, data_dir, **overrides) -> dict:
    """Complete service settings (keys without FORMS_) relaying to a test SMTP server: the one
    shape the app fixtures, the gunicorn tests, the fault rig and the benchmarks start from.
    The spool key is a fresh one, given as production gives it (never a file in `data_dir`)."""
    return {
        "SECRET_KEY": TEST_SECRET_KEY,
        "HEALTH_TOKEN": TEST_HEALTH_TOKEN,
        "SITE_URL": SITE["Origin"],
        # One inbox per form of fields.py, <form>@cch.example.org: a new form needs no set-up change.
        **{form.recipients_setting: [f"{form.name}@cch.example.org"] for form in FORMS.values()},
        "URGENT_RECIPIENTS": ["urgent@cch.example.org"],
        "MAIL_DEFAULT_SENDER": "CoCreate Humanity <forms@cch.example.org>",
        "MAIL_CA_FILE": str(ca_file),
        "MAIL_TIMEOUT": 5,
        "DATA_DIR": str(data_dir),
        # No built site: an HTML refusal is the plain page (tests/forms and tests/deploy give the built one).
        "SITE_DIR": str(data_dir / "no-built-site"),
        "SPOOL_KEY": Fernet.generate_key().decode(),
        "RATELIMIT_ENABLED": False,
        # Tests, the fault rig and benchmarks post many submissions naming one address: the daily
        # quotas apply only where a test is about them.
        "ACK_LIMIT": 1_000_000,
        "URGENT_LIMIT": 1_000_000,
        **mail_config,
        **overrides,
    }


def volunteer_form(**overrides) -> dict:
    """A complete, valid volunteer application with a real PDF resumé."""
    form = {
        "name": "Amina Haddad",
        "email": "amina@example.org",
        "motivation": "Ten years in the field; I know what it costs.\nI want to listen.",
        "resume": (io.BytesIO(samples.pdf_bytes()), "CV Amina.pdf", "application/pdf"),
        "languages": "Arabic, French, English",
        "location": "Amman, UTC+3",
        "availability": "Evenings",
        "training": "Psychological first aid",
        "consent": "yes",
        "lang": "en",
        "website": "",
    }
    return {key: value for key, value in {**form, **overrides}.items() if value is not None}


def support_form(**overrides) -> dict:
    """A complete, valid support request (not urgent)."""
    form = {
        "email": "aidworker@example.org",
        "name": "Sam",
        "message": "Back from a hard mission, I cannot sleep.",
        "situation": "between_missions",
        "preferred_language": "en",
        "contact": "phone",
        "phone": "+41 22 000 00 00",
        "consent": "yes",
        "lang": "en",
        "website": "",
    }
    return {key: value for key, value in {**form, **overrides}.items() if value is not None}

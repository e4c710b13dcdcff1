"""Fixtures of the tests that run the service under gunicorn."""

from __future__ import annotations

import pytest

from harness.smtp_sink import SmtpSink


@pytest.fixture(scope="module")
def sink(smtp_ca):
    """A module's own SMTP server: gunicorn delivers in the background, maybe after a test ended."""
    server = SmtpSink(smtp_ca, mode="starttls", auth=True).start()
    yield server
    server.stop()

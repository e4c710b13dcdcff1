"""What every answer to hostile input must look like, checked the same way by every test here.

A refusal is a 4xx; a success is 200/202/303; never a 500. A JSON answer
has the documented shape, and its messages come from the catalogue of the
language the request asked for (so an English visitor never reads French).
"""

from __future__ import annotations

import functools
import json

from forms_service import i18n
from forms_service.fields import FORMS, LONG_TEXT_MAX, RESUME_MAX_BYTES
from forms_service.form_model import ERRORS, MEGABYTE
from forms_service.messages import FAILURES
from tests.service.helpers import deliver

SUCCESS = frozenset({200, 202, 303})
LANGUAGES = ("fr", "en")


@functools.cache
def messages(language: str) -> frozenset[str]:
    """Every text the service may answer with in `language`: field errors (with each field's limits) and failures."""
    catalogue = i18n.catalogue(language)
    field_texts = {
        catalogue.gettext(msgid, max_length=item.max_length, max_megabytes=item.max_megabytes)
        for form in FORMS.values()
        for item in form.fields
        for msgid in {**ERRORS, **item.errors}.values()
    }
    failure_texts = {
        catalogue.gettext(msgid, max_length=LONG_TEXT_MAX, max_megabytes=RESUME_MAX_BYTES // MEGABYTE)
        for msgid in FAILURES.values()
    }
    return frozenset(field_texts | failure_texts)


def json_messages(status: int, payload: object) -> list[str]:
    """Check the documented JSON shape for `status` and return the messages it carries."""
    assert isinstance(payload, dict) and isinstance(payload.get("ok"), bool), payload
    if status in SUCCESS:
        assert payload["ok"] is True, payload
        assert status != 202 or (isinstance(payload["id"], str) and payload["id"]), payload  # 200: healthz
        return []
    assert payload["ok"] is False, payload
    if "errors" in payload:
        assert status == 400 and set(payload) == {"ok", "errors"}, payload
        errors = payload["errors"]
        assert errors and all(isinstance(name, str) for name in errors), payload
        return list(errors.values())
    assert set(payload) == {"ok", "error"} and isinstance(payload["error"], str), payload
    return [payload["error"]]


def check_answer(status: int, content_type: str, body: bytes, language: str | None = None) -> None:
    """A 4xx or a success, never a 500; JSON in the documented shape and, when given, in `language`.

    `language=None` accepts a message of any catalogue (the request did not
    say which language it wanted unambiguously).
    """
    assert status in SUCCESS or 400 <= status < 500, f"status {status}: {body[:300]!r}"
    if content_type.split(";")[0].strip() == "application/json" and body:  # HEAD: headers only
        texts = json_messages(status, json.loads(body))
        allowed = messages(language) if language else frozenset().union(*map(messages, LANGUAGES))
        assert all(text in allowed for text in texts), (language, texts)
    elif language and status >= 400 and content_type.startswith("text/html"):
        assert f'<html lang="{language}">' in body.decode(), body[:300]


def check_response(response, language: str | None = None) -> None:
    """check_answer for a Flask test client response."""
    check_answer(response.status_code, response.content_type or "", response.get_data(), language)


def delivered(app, smtp_server) -> list:
    """Messages the SMTP sink holds once `app`'s spool has been relayed."""
    deliver(app)
    return list(smtp_server.messages)

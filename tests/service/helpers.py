"""Valid form posts to start from, so each test changes only what it is about."""

from __future__ import annotations

import io

from tests import samples

JSON = {"Accept": "application/json"}
SITE = {"Origin": "https://site.test"}


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


def post(client, form_name: str, data: dict, headers: dict | None = None, **kwargs):
    """POST a form the way a browser on the site does (Origin of the site)."""
    return client.post(f"/forms/{form_name}", data=data, headers={**SITE, **(headers or {})}, **kwargs)

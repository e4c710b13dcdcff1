"""What the deploy tests send."""

from __future__ import annotations


def multipart(form: dict) -> dict:
    """requests' `files=` for a helpers.py form, so it is sent as multipart like the site's forms.

    helpers.py gives a file as Flask's test client takes it, (stream, name, type).
    """
    return {
        name: (value[1], value[0], value[2]) if isinstance(value, tuple) else (None, value)
        for name, value in form.items()
    }

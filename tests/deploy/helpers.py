"""What the deploy tests send, and the stand-in for systemctl they run the units with."""

from __future__ import annotations

from pathlib import Path

# Does with the real unit files what systemd would: ExecStart, the readiness probe, Restart= (see its docstring).
FAKE_SYSTEMCTL = Path(__file__).with_name("fake_systemctl.py")


def multipart(form: dict) -> dict:
    """requests' `files=` for a helpers.py form, so it is sent as multipart like the site's forms.

    helpers.py gives a file as Flask's test client takes it, (stream, name, type).
    """
    return {
        name: (value[1], value[0], value[2]) if isinstance(value, tuple) else (None, value)
        for name, value in form.items()
    }

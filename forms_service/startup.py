"""Loading the app for gunicorn, so that a bad setting stops the server once, with exit status 4.

gunicorn halts (instead of respawning workers forever) when a worker exits
with its "application failed to load" status, 4, which the systemd unit's
RestartPreventExitStatus names. With several workers each one fails at
once, and the master, reaping the second while it halts for the first,
dies with status 1. So the documented command also loads this module as
gunicorn's settings file (`--config python:forms_service.startup`): before
forking, the master has the app built once, and a bad setting ends there.
"""

from __future__ import annotations

import subprocess
import sys

APP_LOAD_ERROR = 4


def load_app():
    """The app from FORMS_* settings, or exit 4 with the one line naming the bad setting."""
    from forms_service.app import create_app
    from forms_service.config import ConfigError

    try:
        return create_app()
    except ConfigError as error:
        print(error.code, file=sys.stderr)
        sys.exit(APP_LOAD_ERROR)


def on_starting(server) -> None:
    """gunicorn hook, in the master before it forks any worker: build the app once, in a
    separate interpreter, so the master opens no spool and holds none of the app's state."""
    status = subprocess.run([sys.executable, "-m", __name__], check=False).returncode
    if status:
        sys.exit(status)


if __name__ == "__main__":
    load_app()

"""Loading the app for gunicorn, so that a bad setting stops the server once, with exit status 4.

gunicorn halts (instead of respawning workers forever) when a worker exits
with its "application failed to load" status, 4, which the systemd unit's
RestartPreventExitStatus names. With several workers each one fails at
once, and the master, reaping the second while it halts for the first,
dies with status 1. So the documented command also loads this module as
gunicorn's settings file (`--config python:forms_service.startup`): the
master builds the app once before it forks, and a bad setting ends there.
"""

from __future__ import annotations

import sys

from flask import Flask

from forms_service import create_app
from forms_service.config import ConfigError

APP_LOAD_ERROR = 4


def load_app() -> Flask:
    """The app from FORMS_* settings, or exit 4 with the one line naming the bad setting."""
    try:
        return create_app()
    except ConfigError as error:
        print(error.code, file=sys.stderr)
        sys.exit(APP_LOAD_ERROR)


def on_starting(server) -> None:
    """gunicorn hook, in the master before it forks any worker: check every setting by
    building the app once (nothing is started, and the app is dropped)."""
    load_app()

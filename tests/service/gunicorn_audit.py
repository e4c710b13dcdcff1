"""gunicorn settings file for tests: every worker reports each file it opens for writing.

Python's audit hooks see every open() and os.open() (O_TMPFILE included),
so an upload spooled to a temporary file, by Werkzeug or anyone else, shows
up on stderr as an "AUDIT write-open" line. Files SQLite opens from C are
not seen: the spool is checked for plaintext by its own tests.
"""

import os
import sys

# This file replaces the documented settings file (`--config python:forms_service.startup`): keep its hook.
from forms_service.startup import on_starting  # noqa: F401

WRITING_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
WRITING_MODES = frozenset("wax+")


def _report_writes(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and WRITING_MODES & set(mode)) or (flags or 0) & WRITING_FLAGS:
            os.write(2, f"AUDIT write-open {os.fsdecode(path) if not isinstance(path, int) else path}\n".encode())
    elif event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
        os.write(2, f"AUDIT write-open {args[0]}\n".encode())


def post_fork(server, worker):
    """In each worker, before it imports the app."""
    sys.addaudithook(_report_writes)

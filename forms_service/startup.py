"""Loading the app for gunicorn, so that start-up stops once, with a status that tells systemd what to do
(README.md, "Start"): 4, gunicorn's "application failed to load", for a bad setting, which a restart cannot
fix (the unit's RestartPreventExitStatus=4); 3, "worker failed to boot", for a fault of the host that passes
(no space left, a read-only file system, a file locked), restarted until it is gone. Several workers failing
at once would end the master with status 1, so the documented command also loads this module as gunicorn's
settings file (`--config python:forms_service.startup`): the master has the app built once before forking.
"""

from __future__ import annotations

import ctypes
import resource
import subprocess
import sys

APP_LOAD_ERROR = 4
HOST_FAULT = 3
PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def forbid_core_dumps() -> None:
    """No core file of this process nor of any it starts (gpg too): a core holds what people wrote. The
    core limit 0 binds children; not dumpable also holds when cores go to a program. The hard limit
    stays (nothing here raises the soft one), so a test's process that builds the app keeps it."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None and prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def load_app(*, starting: bool = False, workers: int | None = None):
    """The app from FORMS_* settings, or exit with the one line naming the setting: status 4 when the
    setting is wrong, 3 when the host fails under it for now (faults.HostFault).

    `starting`: the service is being started (the master's check, below), when an operator is watching:
    a spool holding messages no configured key opens, or an expired OpenPGP key, then stops it too. Not in
    a worker gunicorn respawns later (that would halt a running service) nor in the operator commands.
    `workers`: gunicorn's --workers, which FORMS_UPLOAD_SLOTS must stay below.
    """
    from forms_service import extensions
    from forms_service.app import create_app
    from forms_service.config import ConfigError
    from forms_service.faults import HostFault
    from forms_service.spool import unreadable_problem

    try:
        app = create_app()
        unreadable = starting and unreadable_problem(extensions.spool(app), app.config)
        if unreadable:
            raise unreadable
        keyring = extensions.mail_settings(app).keyring
        if starting and keyring:
            keyring.refuse_expired()
        if workers is not None and app.config["UPLOAD_SLOTS"] >= workers:
            free = f"must be less than gunicorn's --workers ({workers}): one must stay free for requests for help"
            raise ConfigError("UPLOAD_SLOTS", free)
        return app
    except (ConfigError, HostFault) as error:
        print(error.code, file=sys.stderr)
        sys.exit(HOST_FAULT if isinstance(error, HostFault) else APP_LOAD_ERROR)


def on_starting(server) -> None:
    """gunicorn hook, in the master before it forks any worker: no core dumps from here on; build the app
    once, in a separate interpreter, so the master opens no spool and holds none of the app's state.
    `--preload` is refused: its workers would share the master's spool connection across fork(), which
    SQLite forbids."""
    if server.cfg.preload_app:
        sys.exit("forms_service: gunicorn's --preload is not supported: each worker builds the app (README.md)")
    forbid_core_dumps()
    status = subprocess.run([sys.executable, "-m", __name__, str(server.cfg.workers)], check=False).returncode
    if status:
        sys.exit(status)


if __name__ == "__main__":
    load_app(starting=True, workers=int(sys.argv[1]) if len(sys.argv) > 1 else None)

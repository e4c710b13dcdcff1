"""Why a file under a setting's path cannot be used at start-up: a fault of the host that passes, or the setting.

A full disk is not a bad FORMS_DATA_DIR: named as a bad setting, it would stop the service for good (status 4,
which systemd does not restart) and send the operator to a setting that is right. So the cause is named as
itself, in the file system's words, and start-up exits with a status systemd restarts (startup.py).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from .config import PREFIX, ConfigError

# The errors of the system that say the path itself is wrong (a file where a folder must be, a folder
# that cannot be made where every missing one is, a name the system cannot take): the setting must change.
# Any other is the host's, and may pass (a mount gone away says ENOTCONN, ESTALE or EIO).
WRONG_PATH = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL}
# SQLite's primary result codes for what the host does to a file (the others: a damaged or foreign file).
SQLITE_HOST = {
    getattr(sqlite3, f"SQLITE_{name}")
    for name in ("PERM", "BUSY", "LOCKED", "NOMEM", "READONLY", "IOERR", "FULL", "CANTOPEN", "PROTOCOL")
}
# Below this much free space, a write SQLite could not make (its -shm file grows 32 KB at a time) was
# for want of space, whatever SQLite called it ("disk I/O error" when the -shm cannot grow).
NEARLY_FULL_BYTES = 1024 * 1024


class HostFault(SystemExit):
    """A fault of the host that passes, under the path a setting gives: no space left, a read-only or
    missing file system, a file another process holds locked. Not the setting's: start-up stops with a
    status systemd restarts (startup.py), and succeeds again once the fault is gone."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"forms_service: {PREFIX}_{name} {problem}")
        self.setting = f"{PREFIX}_{name}"


def unusable(name: str, path: Path, error: BaseException | None, problem: str) -> ConfigError | HostFault:
    """What stops start-up when `error` (OSError, sqlite3.Error) met `path`, a file in the folder that
    setting `name` gives: a HostFault naming the cause when it is the host's, else a ConfigError."""
    cause = _host_cause(path, error)
    if cause:
        return HostFault(name, f"{problem} now: {cause} ({path})")
    return ConfigError(name, f"{problem}: {path}: {type(error).__name__}")


def _host_cause(path: Path, error: BaseException | None) -> str | None:
    """The host's fault behind `error`, in words ("no space left on device"), or None."""
    if isinstance(error, OSError) and error.errno:
        return None if error.errno in WRONG_PATH else os.strerror(error.errno).lower()
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code not in SQLITE_HOST:
        return None
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "locked by another process"
    try:  # SQLite's words do not say why a file would not open or grow: the file system does
        found = os.statvfs(path.parent)
    except OSError as failed:
        return os.strerror(failed.errno).lower()
    if found.f_flag & os.ST_RDONLY and code != sqlite3.SQLITE_FULL:
        return os.strerror(errno.EROFS).lower()
    full = found.f_bavail * found.f_frsize < NEARLY_FULL_BYTES or (found.f_files and not found.f_favail)
    if code == sqlite3.SQLITE_FULL or full:
        return os.strerror(errno.ENOSPC).lower()
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        return os.strerror(errno.EACCES).lower()
    return str(error)

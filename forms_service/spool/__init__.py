"""Durable spool of outgoing mail: a submission is accepted only once it is on disk, sealed (README.md,
"Spool and delivery"). What the rest of the service uses of the modules here, and the spool from the settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from .. import config as settings
from ..config import ConfigError
from ..faults import HostFault, unusable
from .admin import Spool
from .keys import Sealer, key_setting, sealer_from_config
from .queue import Claimed, RetryPolicy, SpoolBounds, SpoolFull
from .schema import LAYOUT, UnknownLayout
from .storage import SpoolUnavailable

__all__ = ["Claimed", "RetryPolicy", "Sealer", "Spool", "SpoolBounds", "SpoolFull", "SpoolUnavailable"]

SPOOL_FILE_NAME = "spool.sqlite3"


def spool_from_config(config: Mapping) -> Spool:
    """The deployment's spool (FORMS_DATA_DIR/spool.sqlite3), with its keys, retries and bounds (checked by
    config.py: the reserve is part of the bound); a bad setting stops start-up. `config` may leave out
    what has a default (tests give a partial mapping)."""
    config = {**settings.DEFAULTS, **config}
    sealer, path = sealer_from_config(config), Path(config["DATA_DIR"]) / SPOOL_FILE_NAME
    retries = (float(config[name]) for name in ("RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS", "MAX_AGE_SECONDS"))
    bounds = SpoolBounds(config["SPOOL_MAX_BYTES"], config["SPOOL_RESERVE_BYTES"])
    try:
        return Spool(path, sealer, RetryPolicy(*retries), bounds=bounds)
    except SpoolUnavailable as error:
        raise unusable("DATA_DIR", path, error.__cause__, "cannot hold the spool") from error
    except UnknownLayout as unknown:
        raise ConfigError(
            "DATA_DIR",
            f"holds {path} in layout {unknown.args[0]}, which this release does not know (it knows up to "
            f"{LAYOUT}): run the release that wrote it, or a newer one (deploy/README.md, section 8)",
        ) from unknown


def unreadable_problem(
    spool: Spool, config: Mapping, *, since_last_check: bool = False
) -> ConfigError | HostFault | None:
    """The start-up error for a spool holding messages none of the configured keys opens, if any: serving
    on would mark them all dead, and a new key would only add to what nobody can read (startup.py). The
    operator's commands still run (`since_last_check`: see Spool.unreadable)."""
    try:
        count, total = spool.unreadable(since_last_check=since_last_check)
    except sqlite3.Error as error:
        return unusable("DATA_DIR", spool.path, error, "cannot read the spool")
    if not count:
        return None
    problem = f"does not open {count} of the {total} messages in {spool.path}"
    return ConfigError(key_setting(config), f"{problem}: give the key that sealed them as well (deploy/README.md)")

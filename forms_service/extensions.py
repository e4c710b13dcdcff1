"""What the app's parts share through Flask's `app.extensions`: each entry's name, and its getter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from .compose import MailSettings
    from .delivery import Deliverer
    from .health import PublicHealth
    from .spool import Spool
    from .upload_slots import UploadSlots

SPOOL = "forms_spool"
DELIVERER = "forms_deliverer"
MAIL_SETTINGS = "forms_mail_settings"
UPLOAD_SLOTS = "forms_upload_slots"
PUBLIC_HEALTH = "forms_public_health"


def spool(app: Flask) -> Spool:
    """The deployment's spool (delivery.init_delivery registers it)."""
    return app.extensions[SPOOL]


def deliverer(app: Flask) -> Deliverer:
    """This process's deliverer, started only by the WSGI entry point and the dev server."""
    return app.extensions[DELIVERER]


def mail_settings(app: Flask) -> MailSettings:
    """What composition needs from the settings, OpenPGP's vetted keys included (app.py)."""
    return app.extensions[MAIL_SETTINGS]


def upload_slots(app: Flask) -> UploadSlots:
    return app.extensions[UPLOAD_SLOTS]


def public_health(app: Flask) -> PublicHealth:
    return app.extensions[PUBLIC_HEALTH]

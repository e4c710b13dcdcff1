"""Operator commands: `flask --app forms_service spool status|retry|dead|requeue|rotate-key|new-key`.

They show bookkeeping only (ids, times, counts, error codes), never what
people submitted.
"""

from __future__ import annotations

import datetime

import click
from cryptography.fernet import Fernet
from flask import current_app
from flask.cli import AppGroup

from .delivery import DELIVERER_EXTENSION, SPOOL_EXTENSION, Deliverer
from .sealing import KeyFileSealer, add_new_key, retire_old_keys
from .spool import Spool

spool_cli = AppGroup("spool", help="Inspect and operate the durable mail spool.")


def _spool() -> Spool:
    return current_app.extensions[SPOOL_EXTENSION]


def _deliverer() -> Deliverer:
    return current_app.extensions[DELIVERER_EXTENSION]


def _when(timestamp: float) -> str:
    """UTC time to the second, as operators compare it with mail server logs."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _echo_status(spool: Spool) -> None:
    stats = spool.stats()
    oldest = "-" if stats.oldest_age_seconds is None else f"{stats.oldest_age_seconds:.0f} s"
    click.echo(f"queued: {stats.queued}\ndead: {stats.dead}\noldest queued: {oldest}")


@spool_cli.command("status")
def status() -> None:
    """Counts of queued and dead messages and the age of the oldest queued one."""
    _echo_status(_spool())


@spool_cli.command("retry")
def retry() -> None:
    """Make every queued message due now and try to deliver them once, here."""
    due = _spool().make_due()
    attempted = _deliverer().deliver_all()
    click.echo(f"due: {due}, attempted: {attempted}")
    _echo_status(_spool())


@spool_cli.command("dead")
def dead() -> None:
    """List dead messages: id, acceptance time, attempts, last error code."""
    click.echo("id\tsubmission\tcreated\tattempts\tlast error")
    for entry in _spool().list_dead():
        click.echo(f"{entry.id}\t{entry.submission_id}\t{_when(entry.created_at)}\t{entry.attempts}\t{entry.last_error}")


@spool_cli.command("requeue")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Requeue every dead message.")
def requeue(ids: tuple[int, ...], everything: bool) -> None:
    """Give dead messages (by id, or --all) a fresh start with a new retry budget."""
    if bool(ids) == everything:
        raise click.UsageError("give dead message ids, or --all")
    count = _spool().requeue(None if everything else ids)
    click.echo(f"requeued: {count}")


@spool_cli.command("rotate-key")
@click.option("--retire-old", is_flag=True, help="Key file only: re-seal, then delete every key but the newest.")
def rotate_key(retire_old: bool) -> None:
    """Re-seal every spooled message with the newest symmetric key.

    With FORMS_SPOOL_KEY: put the new key first in the list, restart, run
    this, then drop the old key from the list. With FORMS_SPOOL_KEY_FILE:
    this adds a new key to the file and re-seals; running workers follow at
    once; run it again with --retire-old to delete the old keys.
    """
    spool = _spool()
    sealer = spool.sealer
    if isinstance(sealer, KeyFileSealer) and not retire_old:
        add_new_key(sealer.path)
    click.echo(f"re-sealed: {spool.reseal()}")
    if isinstance(sealer, KeyFileSealer) and retire_old:
        retire_old_keys(sealer.path)
        click.echo("old keys deleted from the key file")
    elif retire_old:
        click.echo("FORMS_SPOOL_KEY is set: remove the old keys from it yourself and restart")


@spool_cli.command("new-key", with_appcontext=False)
def new_key() -> None:
    """Print a fresh key for FORMS_SPOOL_KEY."""
    click.echo(Fernet.generate_key().decode())

"""Operator commands: `flask --app forms_service spool status|retry|dead|requeue|discard|rotate-key|new-key|check`.

They show bookkeeping only, never what people submitted. `spool check` is for monitoring (the monitoring-plugins
convention); it answers even when a setting prevents start-up (unconfigured_app).
"""

from __future__ import annotations

from typing import NoReturn

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup

from . import extensions, health
from .spool import Spool
from .spool.admin import utc
from .spool.keys import KeyFileSealer, add_new_key, retire_old_keys

spool_cli = AppGroup("spool", help="Inspect and operate the durable mail spool.")


def _echo_status(spool: Spool) -> None:
    stats = spool.stats()
    oldest = "-" if stats.oldest_age_seconds is None else f"{stats.oldest_age_seconds:.0f} s"
    error = stats.delivery_error and f"since {utc(stats.delivery_error.since)}: {stats.delivery_error.error}"
    click.echo(
        f"queued: {stats.queued}\ndead: {stats.dead}\noldest queued: {oldest}\nlast delivery error: {error or '-'}"
    )


@spool_cli.command("status")
def status() -> None:
    """Counts of queued and dead messages, the age of the oldest queued one, and the last delivery
    error (until a delivery succeeds) with its time."""
    _echo_status(extensions.spool(current_app))


@spool_cli.command("retry")
def retry() -> None:
    """Make every queued message due now and try to deliver them once, here."""
    due = extensions.spool(current_app).make_due()
    attempted = extensions.deliverer(current_app).deliver_all()
    click.echo(f"due: {due}, attempted: {attempted}")
    _echo_status(extensions.spool(current_app))


@spool_cli.command("dead")
def dead() -> None:
    """List dead messages: id, submission, kind, acceptance time, attempts, last error code.

    Kind: `association` (the association's copy: requeue it once the cause is
    fixed) or `acknowledgement` (the submitter's receipt).
    """
    click.echo("id\tsubmission\tkind\tcreated\tattempts\tlast error")
    for entry in extensions.spool(current_app).list_dead():
        click.echo(
            f"{entry.id}\t{entry.submission_id}\t{entry.kind}\t{utc(entry.created_at)}"
            f"\t{entry.attempts}\t{entry.last_error}"
        )


@spool_cli.command("requeue")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Requeue every dead message.")
def requeue(ids: tuple[int, ...], everything: bool) -> None:
    """Give dead messages (by id, or --all) a fresh start with a new retry budget."""
    if bool(ids) == everything:
        raise click.UsageError("give dead message ids, or --all")
    count = extensions.spool(current_app).requeue(None if everything else ids)
    click.echo(f"requeued: {count}")


@spool_cli.command("discard")
@click.argument("entry_id", metavar="ID", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def discard(entry_id: int, yes: bool) -> None:
    """Delete one dead message for good: it will never be delivered (e.g. a copy the
    association already received another way). Only dead messages can be discarded."""
    spool = extensions.spool(current_app)
    entry = next((entry for entry in spool.list_dead() if entry.id == entry_id), None)
    if entry is None:
        raise click.ClickException(f"no dead message has id {entry_id} (see `spool dead`)")
    if not yes:
        click.confirm(
            f"Discard dead message {entry_id} ({entry.kind}, submission "
            f"{entry.submission_id})? It can never be delivered afterwards",
            abort=True,
        )
    if not spool.discard(entry_id):
        raise click.ClickException(f"message {entry_id} is no longer dead (requeued meanwhile?): kept")
    click.echo(f"discarded: {entry_id}")


@spool_cli.command("rotate-key")
@click.option("--retire-old", is_flag=True, help="Key file only: re-seal, then delete every key but the newest.")
def rotate_key(retire_old: bool) -> None:
    """Re-seal every spooled message with the newest symmetric key.

    With FORMS_SPOOL_KEY: put the new key first in the list, restart, run
    this, then drop the old key from the list. With FORMS_SPOOL_KEY_FILE:
    this adds a new key to the file and re-seals; running workers follow at
    once; run it again with --retire-old to delete the old keys.
    """
    spool = extensions.spool(current_app)
    sealer = spool.sealer
    if isinstance(sealer, KeyFileSealer) and not retire_old:
        add_new_key(sealer.path)
    done, unreadable = spool.reseal()
    click.echo(f"re-sealed: {done}")
    if unreadable:
        click.echo(
            f"skipped, no key opens them (now dead, see `flask --app forms_service spool dead`): "
            f"{' '.join(map(str, unreadable))}"
        )
    if isinstance(sealer, KeyFileSealer) and retire_old:
        retire_old_keys(sealer.path)
        click.echo("old keys deleted from the key file")
    elif retire_old:
        click.echo("FORMS_SPOOL_KEY is set: remove the old keys from it yourself and restart")


@spool_cli.command("new-key", with_appcontext=False)
def new_key() -> None:
    """Print a fresh key for FORMS_SPOOL_KEY."""
    click.echo(Fernet.generate_key().decode())


# -- monitoring -------------------------------------------------------------


def _report(status: int, summary: str, perfdata: str = "") -> NoReturn:
    """The one line monitoring reads, then the exit status it acts on."""
    click.echo(f"SPOOL {health.STATUS_NAMES[status]} - {summary}" + (f" | {perfdata}" if perfdata else ""))
    raise click.exceptions.Exit(status)


class MonitoringCommand(click.Command):
    """A command whose every outcome is one line and a status of 0 to 3: a usage error is
    UNKNOWN (click would exit 2, which monitoring reads as CRITICAL)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            _report(health.UNKNOWN, f"usage: {error.format_message()}")


# The options of `spool check`: health.Thresholds' fields, with their defaults.
THRESHOLDS = {
    "warning_queued": "WARNING above this many queued messages.",
    "critical_queued": "CRITICAL above this many queued messages.",
    "warning_age": "WARNING when the oldest queued message is older (seconds).",
    "critical_age": "CRITICAL when the oldest queued message is older (seconds).",
}


def _threshold_options(command):
    for name, explained in reversed(THRESHOLDS.items()):
        flag, default = f"--{name.replace('_', '-')}", getattr(health.Thresholds, name)
        command = click.option(flag, type=click.IntRange(0), default=default, show_default=True, help=explained)(
            command
        )
    return command


@spool_cli.command("check", cls=MonitoringCommand)
@_threshold_options
def check(**thresholds: int) -> None:
    """For monitoring: one line with performance data; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    CRITICAL: a submission would fail now (the health check's probe), an
    association copy is dead, an OpenPGP key has expired, the rate-limit
    storage does not answer, the last delivery failed in a way only a person
    can fix (login, certificate, TLS mode, sender refused), too many or too
    old queued messages, or a setting prevents start-up. WARNING: a key
    expires within 30 days, the queue is longer or older than the warning
    thresholds.
    """
    try:
        verdict = health.assess(
            current_app, extensions.mail_settings(current_app).keyring, health.Thresholds(**thresholds)
        )
    except Exception as error:  # whatever happens, monitoring gets a line and a status it knows
        _report(health.UNKNOWN, f"the check itself failed: {type(error).__name__}")
    _report(verdict.status, verdict.summary, verdict.perfdata)


def looking_up_a_command() -> bool:
    """True while `flask` loads the app to find one of its commands (not for `flask run` etc.)."""
    context = click.get_current_context(silent=True)
    return context is not None and isinstance(context.command, FlaskGroup)


class UnconfiguredSpool(click.Group):
    """The `spool` commands when a setting prevents start-up: `check` reports it as
    CRITICAL; every other command stops with the setting's line, as the service does."""

    def __init__(self, error: BaseException):
        super().__init__("spool", help="The service cannot start: see `spool check`.")
        self.error = error
        self.add_command(
            click.Command(
                "check",
                callback=self._check,
                help=check.help,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )
        )

    def _check(self) -> NoReturn:
        reason = self.error.code if isinstance(self.error, SystemExit) else f"cannot start: {type(self.error).__name__}"
        _report(health.CRITICAL, str(reason))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            raise self.error
        return command


def unconfigured_app(error: BaseException) -> Flask:
    """What `flask --app forms_service` gets when building the app failed: only the spool commands (`flask`
    would end with status 1, which monitoring reads as WARNING; a service that cannot start is CRITICAL)."""
    app = Flask(__name__)
    app.cli.add_command(UnconfiguredSpool(error))
    return app

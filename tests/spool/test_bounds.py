"""The spool's bounds on a real file: FORMS_SPOOL_MAX_BYTES with a reserve only some forms may fill,
and a file that gives its space back after a burst (delivery + erase, as the service runs them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from forms_service.app import create_app
from forms_service.config import ConfigError
from forms_service.spool import Spool, SpoolBounds, SpoolFull
from tests.spool.conftest import FAST_RETRY, outgoing
from tests.spool.test_delivery import make_deliverer

MEGABYTE = 1024 * 1024
BOUNDS = SpoolBounds(max_bytes=6 * MEGABYTE, reserve_bytes=MEGABYTE)


def on_disk(path: Path) -> int:
    """Bytes of the spool's files: the database and its WAL."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def used_bytes(path: Path) -> int:
    """Pages in use, read by a connection of the test's own (as another process sees the file)."""
    with sqlite3.connect(path) as db:
        (used,) = db.execute(
            "SELECT (page_count - freelist_count) * page_size"
            " FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
        ).fetchone()
    db.close()
    return used


def upload(marker: str, number: int):
    """An email the size of a resumé's share of the bound."""
    return outgoing(marker, number, body=(b"x" * 76 + b"\r\n") * (MEGABYTE // 2 // 78))


def test_a_flood_of_uploads_stops_at_the_bound_and_the_reserve_still_takes_a_request_for_help(spool_path, sealer):
    spool = Spool(spool_path, sealer, FAST_RETRY, bounds=BOUNDS)
    accepted = 0
    with pytest.raises(SpoolFull):
        for number in range(100):
            spool.accept(f"flood-{number}", [upload("flood", number)])
            accepted += 1
    assert 5 <= accepted < 12  # about 5 MB of half-megabyte emails (sealed: a third more)
    assert used_bytes(spool_path) <= BOUNDS.limit(reserve=False)
    for number in range(20):  # a request for help is a few KB: the reserve holds many
        spool.accept(f"help-{number}", [outgoing("help", number)], reserve=True)
    assert spool.stats().queued == accepted + 20
    assert used_bytes(spool_path) <= BOUNDS.max_bytes


def test_past_the_whole_bound_the_health_probe_fails(spool_path, sealer):
    spool = Spool(spool_path, sealer, FAST_RETRY, bounds=BOUNDS)

    def page_sized(marker: str, number: int):
        return outgoing(marker, number, body=(b"y" * 76 + b"\r\n") * 750)

    for mail in (upload, page_sized, outgoing):  # big ones, then smaller ones into what is left
        with pytest.raises(SpoolFull):
            for number in range(1000):
                spool.accept(f"help-{number}", [mail("help", number)], reserve=True)
    with pytest.raises(SpoolFull):
        spool.probe(outgoing("probe"))


def test_the_file_gives_its_space_back_once_the_burst_is_delivered(app, spool_path, sealer, smtp_server):
    """No VACUUM by hand: the delivery pass deletes what it sent and erases, as the service does."""
    spool = Spool(spool_path, sealer, FAST_RETRY)
    for number in range(12):
        spool.accept(f"burst-{number}", [upload("burst", number)])
    burst = on_disk(spool_path)
    assert burst > 6 * MEGABYTE
    # Counted as delivered, not as claimed: on a loaded machine a batch outlives half its lease, and
    # what it had not sent yet is released and claimed again.
    make_deliverer(app, spool).deliver_all()
    assert spool.stats().queued == 0 and len(smtp_server.messages) == 12
    assert on_disk(spool_path) < MEGABYTE
    assert spool_path.stat().st_size == used_bytes(spool_path)  # no free page kept


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"SPOOL_MAX_BYTES": "1G"}, "FORMS_SPOOL_MAX_BYTES"),
        ({"SPOOL_RESERVE_BYTES": -1}, "FORMS_SPOOL_RESERVE_BYTES"),
        ({"SPOOL_MAX_BYTES": MEGABYTE, "SPOOL_RESERVE_BYTES": MEGABYTE}, "FORMS_SPOOL_RESERVE_BYTES"),
    ],
)
def test_bad_bounds_stop_start_up_naming_the_setting(app_config, settings, named):
    with pytest.raises(ConfigError) as refused:
        create_app({**app_config, **settings})
    assert refused.value.setting == named


def test_defaults_leave_room_for_a_hundred_applications_and_thousands_of_requests_for_help():
    bounds = SpoolBounds()
    assert (bounds.max_bytes, bounds.reserve_bytes) == (1024 * MEGABYTE, 64 * MEGABYTE)

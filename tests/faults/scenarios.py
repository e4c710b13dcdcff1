"""The fault scenarios of issue 7, each a function returning its Figures.

Plain functions (no pytest), so the tests assert on them and a benchmark
script can print them: `run_all(folder)` runs every scenario in a fresh
sub-folder and returns the figures, one `Figures.line()` each. Every wait is
bounded by a deadline; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

from forms_service import extensions
from forms_service.app import create_app
from forms_service.delivery import start_delivery
from harness.smtp_sink import DROP
from tests.faults.rig import Figures, Rig, kill_server, unique_resume, watching_data
from tests.service.helpers import wait_until

SUBMISSIONS = 8
TEMPORARY_REPLIES = [
    "421 4.3.0 Service not available",
    "451 4.3.0 Try again later",
    "452 4.3.1 Storage full",
    "451 4.7.1 Greylisted",
]
PERMANENT_REPLIES = ["550 5.7.1 Refused", "554 5.6.0 Content rejected"]


def smtp_down(rig: Rig, inspect: Callable[[Rig], None] | None = None) -> Figures:
    """The SMTP server is down while submissions (some with a resumé) arrive, then comes
    back: all are accepted at once and delivered without operator action.
    `inspect(rig)` runs while everything is still spooled."""
    with rig.serve() as server:
        rig.submit(server.port, SUBMISSIONS)
        resume = unique_resume()
        rig.submit(server.port, 2, resume=resume)
        if inspect:
            inspect(rig)
        rig.sink.start()
        try:
            rig.settled(server)
        finally:
            rig.sink.stop()
    return rig.figures("smtp-down")


def smtp_slow(rig: Rig) -> Figures:
    """The server answers DATA after FORMS_MAIL_TIMEOUT (1 s) until it recovers: the
    relay gives up and retries. A server that still kept a copy after our timeout
    would cause a duplicate, recognisable by its Message-ID (aiosmtpd drops it)."""
    rig.settings["MAIL_TIMEOUT"] = 1
    rig.sink.handler.delay = 1.5

    def recover() -> None:
        # Both workers timed out at least once: the test checks it happened.
        rig.observed["timed_out"] = wait_until(lambda: rig.failed_attempts() >= 2, 10)
        rig.sink.handler.delay = 0

    return _with_sink(rig, "smtp-slow", recover)


def smtp_refusing_temporarily(rig: Rig) -> Figures:
    """421/451/452 replies: every message is retried until the server takes it."""
    rig.sink.handler.script.extend(TEMPORARY_REPLIES)
    return _with_sink(rig, "smtp-4xx")


def smtp_refusing_permanently(rig: Rig) -> Figures:
    """550/554 replies: the association's copies refused go dead (kept, for `flask spool requeue`), the
    acknowledgements refused are logged and dropped, the rest arrive."""
    rig.sink.handler.script.extend(PERMANENT_REPLIES)
    return _with_sink(rig, "smtp-5xx")


def smtp_dropping_mid_data(rig: Rig) -> Figures:
    """The server closes the connection after the message data, before its reply."""
    rig.sink.handler.script.extend([DROP] * 3)
    return _with_sink(rig, "smtp-drop")


def sigkill_under_load(rig: Rig) -> Figures:
    """Clients keep posting (some uploads in flight) while relays are mid-DATA; every
    gunicorn process gets SIGKILL; a new server on the same spool delivers the rest.
    Only a message caught mid-relay may arrive twice: at most one per worker."""
    rig.settings["SPOOL_LEASE_SECONDS"] = 2  # the killed workers' claims expire soon
    rig.sink.handler.delay = 0.4
    rig.sink.start()
    stop = threading.Event()
    try:
        with watching_data(rig.sink) as relays, rig.serve() as server:
            clients = [
                threading.Thread(target=post_until, args=(rig, server.port, stop, number % 2 == 0))
                for number in range(4)
            ]
            for client in clients:
                client.start()
            if not wait_until(lambda: len(rig.submissions.accepted) >= SUBMISSIONS and relays["in_progress"], 15):
                raise RuntimeError("no relay in flight to kill")
            rig.observed["relays_at_kill"] = relays["in_progress"]  # read first: the kill ends them
            stop.set()  # before the kill: a post refused by the dead server is not a cut request
            kill_server(server)
            for client in clients:
                client.join(30)
            rig.sink.handler.delay = 0
            with rig.serve() as restarted:
                rig.submit(restarted.port, 2)
                rig.settled(restarted)
            wait_until(lambda: relays["in_progress"] == 0, 5)  # late copies of the killed relays
    finally:
        stop.set()
        rig.sink.stop()
    return rig.figures("sigkill")


def full_disk(rig: Rig, mount: bool = True) -> Figures:
    """The spool's file system fills up: submissions get 503 (never a false 202), health
    says 503; once space is back they are accepted and delivered. A real full disk (a
    1 MB tmpfs; needs root and mount) when possible; otherwise, or with mount=False,
    a simulated one: SQLite's own "database or disk is full" error, caused by
    PRAGMA max_page_count on the spool's connection (rig.observed["disk"] says which)."""
    rig.sink.start()
    try:
        with _small_disk(rig.data_dir, mount) as (kind, fill):
            rig.observed["disk"] = kind
            app = create_app(rig.settings)
            deliverer = start_delivery(app)
            with _serving(app) as port:
                release = fill(app)
                rig.submit(port, 2, clients=1)
                rig.observed["refusal"] = rig.post(port, lang="fr").json()
                rig.observed["healthz_when_full"] = rig.healthz(port)
                release()
                rig.submit(port, 3, clients=1)
                rig.settled()
            deliverer.stop()
            return rig.figures(f"full-disk-{kind}")  # while the small disk still holds the spool
    finally:
        rig.sink.stop()


SCENARIOS: dict[str, Callable[[Rig], Figures]] = {
    "smtp-down": smtp_down,
    "smtp-slow": smtp_slow,
    "smtp-4xx": smtp_refusing_temporarily,
    "smtp-5xx": smtp_refusing_permanently,
    "smtp-drop": smtp_dropping_mid_data,
    "sigkill": sigkill_under_load,
    "full-disk": full_disk,
}


def run_all(folder: Path) -> list[Figures]:
    """Every scenario in a fresh sub-folder of `folder` (for benchmarks/)."""
    results = []
    for name, scenario in SCENARIOS.items():
        workdir = folder / name
        workdir.mkdir(parents=True)
        results.append(scenario(Rig(workdir)))
    return results


def _with_sink(rig: Rig, name: str, meanwhile: Callable[[], object] = lambda: None) -> Figures:
    """Submit under the production server with the (scripted) SMTP server up; settle."""
    rig.sink.start()
    try:
        with rig.serve() as server:
            rig.submit(server.port, SUBMISSIONS)
            meanwhile()
            rig.settled(server)
            log = server.output()
    finally:
        rig.sink.stop()
    return rig.figures(name, log)


def post_until(rig: Rig, port: int, stop: threading.Event, with_resume: bool, pause: float = 0.0) -> None:
    """One client posting forms back to back (or `pause` seconds apart) until told to stop
    (or the server dies)."""
    resume = unique_resume() if with_resume else None
    while not stop.is_set():
        rig.post(port, resume)
        stop.wait(pause)


@contextmanager
def _serving(app) -> Iterator[int]:
    """`app` behind Werkzeug's threaded HTTP server on a loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def _small_disk(folder: Path, mount: bool):
    """Yield ("tmpfs" or "simulated", fill(app) -> release()): fill the spool's disk, and undo it."""
    folder.mkdir(parents=True)
    mounted = (
        mount
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(folder)], capture_output=True, check=False
        ).returncode
        == 0
    )
    try:
        yield ("tmpfs", _fill_tmpfs(folder)) if mounted else ("simulated", _cap_pages)
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(folder)], check=False)


def _fill_tmpfs(folder: Path) -> Callable:
    """fill(app): write a file until the tmpfs is full; release() deletes it."""

    def fill(app) -> Callable[[], None]:
        filler = folder / "filler"
        with filler.open("wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        return filler.unlink

    return fill


def _cap_pages(app) -> Callable[[], None]:
    """fill(app) without a mount: forbid the spool database to grow (SQLITE_FULL)."""
    spool = extensions.spool(app)
    with spool._connected() as db:
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count = {pages}")

    def release() -> None:
        with spool._connected() as db:
            db.execute("PRAGMA max_page_count = 4294967294")

    return release

"""The test bench of the fault scenarios: a real SMTP server, the production server, real clients.

Everything runs on loopback: an aiosmtpd server with STARTTLS and AUTH
(harness/smtp_sink.py) whose certificate comes from a throw-away CA, the
service under `gunicorn forms_service.wsgi:app` as README.md documents it
(harness/gunicorn.py), and HTTP clients posting real forms. Figures are
counted from what the SMTP server received, by Message-ID, against what the
service answered 202 to, and from the dead entries kept in the spool.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import trustme

from forms_service.spool import SPOOL_FILE_NAME
from forms_service.spool.keys import keys_from_setting
from forms_service.spool.queue import MESSAGES
from harness import samples
from harness.flood import until_taken
from harness.gunicorn import Gunicorn
from harness.settings import JSON, SITE, service_settings, support_form, volunteer_form
from harness.smtp_sink import SmtpSink
from tests import forensics
from tests.service.helpers import wait_until

MAILS_PER_SUBMISSION = 2  # the association's email and the acknowledgement
DROPPED = re.compile(r"dropped acknowledgement spool entry \d+ \(submission ([\w-]+)\)")
FAST_RETRIES = {"RETRY_BASE_SECONDS": 0.2, "RETRY_MAX_SECONDS": 1}


@dataclass(frozen=True)
class Figures:
    """What one scenario did to the submissions it made; counts of submissions
    except `duplicated`, which counts extra email copies (same Message-ID)."""

    scenario: str
    accepted: int  # answered 202
    refused: int  # answered 503: the sender knows it was not taken
    delivered: int  # every email of the submission arrived (but an acknowledgement dropped as below)
    dead: int  # an email refused for good (5xx), kept in the spool as dead
    lost: int  # accepted, yet neither delivered nor kept nor dropped as below: must be 0
    duplicated: int
    seconds: float
    dropped: int = 0  # acknowledgements refused for good (5xx): logged and dropped, by design

    def line(self) -> str:
        """The one-line summary pytest -s shows and a benchmark can print."""
        return (
            f"fault {self.scenario}: accepted {self.accepted}, refused {self.refused}, delivered {self.delivered},"
            f" dead {self.dead}, lost {self.lost}, duplicated {self.duplicated}, dropped acknowledgements"
            f" {self.dropped} in {self.seconds:.1f} s"
        )


@dataclass
class Submissions:
    """What the clients were told: ids answered 202, how many got 503, how many
    requests the server cut (it died under them: the client knows nothing was taken)."""

    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    cut: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: requests.Response | None) -> None:
        with self._lock:
            if response is None:
                self.cut += 1
            elif response.status_code == 202:
                self.accepted.append(response.json()["id"])
            elif response.status_code == 503:
                self.refused += 1


class Rig:
    """One scenario's world: a CA, an SMTP server (started or not), a data folder.

    `settings` are complete service settings (keys without FORMS_) pointed
    at the SMTP server, with retries a fraction of a second apart.
    """

    def __init__(self, workdir: Path, **settings):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        ca = trustme.CA()
        ca_file = workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        self.sink = SmtpSink(ca, mode="starttls", auth=True)
        self.settings = service_settings(
            self.sink.mail_config(), ca_file, self.data_dir, **{**FAST_RETRIES, **settings}
        )
        self.submissions = Submissions()
        self.observed: dict[str, object] = {}  # what a scenario saw on the way, for its test
        self.started = time.monotonic()

    def serve(self) -> Gunicorn:
        """The production server on this rig's settings (a context manager)."""
        return Gunicorn(settings=self.settings)

    def submit(self, port: int, count: int, *, clients: int = 4, resume: bytes | None = None) -> None:
        """Post `count` forms from `clients` concurrent clients: support requests, or
        volunteer applications when a resumé is given. Connection errors count as not accepted."""
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda _: self.post(port, resume), range(count)))

    def healthz(self, port: int) -> int:
        """The status of GET /forms/healthz."""
        return requests.get(f"http://127.0.0.1:{port}/forms/healthz", timeout=10).status_code

    def post(self, port: int, resume: bytes | None = None, **fields: str) -> requests.Response | None:
        """One form post as the site's script sends it; the answer is recorded and returned."""
        url = f"http://127.0.0.1:{port}/forms/{'volunteer' if resume else 'support'}"
        try:
            if resume:  # sent again while the upload slots are all taken, as the site's script does
                response = until_taken(
                    lambda: requests.post(
                        url,
                        data=volunteer_form(resume=None, **fields),
                        headers={**SITE, **JSON},
                        files={"resume": ("cv.pdf", resume, "application/pdf")},
                        timeout=30,
                    )
                )
            else:
                response = requests.post(url, data=support_form(**fields), headers={**SITE, **JSON}, timeout=30)
        except requests.RequestException:
            response = None  # the server died under this request
        self.submissions.record(response)
        return response

    def received(self) -> Counter:
        """Copies received per Message-ID."""
        return Counter(message.parsed()["Message-ID"] for message in self.sink.messages)

    def spool_states(self) -> list[tuple[str, str]]:
        """(submission id, state) of every message the spool holds: bookkeeping, readable without a key."""
        return [(submission_id, state) for submission_id, state, _ in self.spool_rows()]

    def spool_rows(self) -> list[tuple[str, str, str]]:
        """(submission id, state, kind) of every message the spool holds."""
        with closing(sqlite3.connect(self.data_dir / SPOOL_FILE_NAME)) as db:
            return db.execute(f"SELECT o.submission_id, s.state, o.kind FROM {MESSAGES}").fetchall()

    def stolen(self) -> forensics.Recovered:
        """What a thief who copies the data folder now, file by file as `cp -r` does, and
        also holds the spool key, recovers from it (tests/forensics.py)."""
        with tempfile.TemporaryDirectory(dir=self.workdir) as folder:
            copy = Path(folder) / "data"
            shutil.copytree(self.data_dir, copy)
            return forensics.examine(copy, keys_from_setting(self.settings["SPOOL_KEY"]))

    def failed_attempts(self) -> int:
        """Failed delivery attempts recorded for the messages still in the spool."""
        with closing(sqlite3.connect(self.data_dir / SPOOL_FILE_NAME)) as db:
            return db.execute("SELECT total(attempts) FROM schedule").fetchone()[0]

    def settled(self, server: Gunicorn | None = None, timeout: float = 20.0) -> None:
        """Wait until the spool holds nothing but dead messages; a timeout fails the scenario
        (with the end of `server`'s log) rather than showing up later as a misleading "lost" count."""
        if not wait_until(lambda: all(state == "dead" for _, state in self.spool_states()), timeout):
            log = f"\ngunicorn's log ends with:\n{server.output()[-4000:]}" if server else ""
            raise AssertionError(
                f"the spool still holds live messages after {timeout:.0f} s: {self.spool_states()}{log}"
            )

    def figures(self, scenario: str, log: str = "") -> Figures:
        """Count outcomes per accepted submission from the SMTP server, the spool, and the
        acknowledgements the service's `log` says it dropped after a permanent refusal."""
        received = self.received()
        dead = Counter(submission_id for submission_id, state in self.spool_states() if state == "dead")
        dropped = set(DROPPED.findall(log))
        delivered = dead_count = lost = 0
        for submission_id in self.submissions.accepted:
            arrived = sum(
                f"<{submission_id}.{number}@site.test>" in received for number in range(1, MAILS_PER_SUBMISSION + 1)
            ) + (submission_id in dropped)
            delivered += arrived == MAILS_PER_SUBMISSION
            dead_count += dead[submission_id] > 0
            lost += arrived + dead[submission_id] < MAILS_PER_SUBMISSION
        duplicated = sum(copies - 1 for copies in received.values())
        return Figures(
            scenario,
            len(self.submissions.accepted),
            self.submissions.refused,
            delivered,
            dead_count,
            lost,
            duplicated,
            time.monotonic() - self.started,
            len(dropped),
        )


def unique_resume() -> bytes:
    """A valid PDF with a random marker, to look for in raw files."""
    return samples.pdf_bytes(f"Resume {secrets.token_hex(12)}")


def kill_server(server: Gunicorn) -> None:
    """SIGKILL the master and every worker at once, as a power cut or the OOM killer would."""
    for pid in server.pids():
        os.kill(pid, signal.SIGKILL)
    server.process.wait()


@contextmanager
def watching_data(sink: SmtpSink):
    """Count DATA commands in progress on `sink` (to kill the service mid-relay)."""
    handler = sink.handler
    original = handler.handle_DATA
    state = {"in_progress": 0}

    async def handle_DATA(server, session, envelope):
        state["in_progress"] += 1
        try:
            return await original(server, session, envelope)
        finally:
            state["in_progress"] -= 1

    handler.handle_DATA = handle_DATA
    try:
        yield state
    finally:
        del handler.handle_DATA

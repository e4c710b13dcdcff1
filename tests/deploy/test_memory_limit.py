"""A 1 GB server with the documented three workers survives 20 concurrent 5 MB uploads (issue 13).

nginx with the deploy configuration and gunicorn as README.md's "Start" runs
it both run inside a memory cgroup limited to what such a server leaves them,
swap included, so an overrun is an OOM kill here as it would be there. nginx
holds every body; the service works on FORMS_UPLOAD_SLOTS of them at once and
answers the others "busy", which are sent again as the site's script does. Every
upload must end answered 202, every email (the association's and the
acknowledgement) must reach the SMTP server, no process may have been killed
and no gunicorn worker replaced.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pysequoia
import pytest
import requests

from harness import cgroup, samples
from harness.cgroup import MemoryCgroup
from harness.flood import until_taken
from harness.gunicorn import Gunicorn
from harness.nginx import LocalNginx
from harness.settings import JSON, SITE, service_settings, volunteer_form
from tests.deploy.helpers import multipart

MEGABYTE = 1024 * 1024
# A "1 GB" virtual server shows about 960 MB to Linux once the kernel has reserved its own; a
# minimal Debian at rest (systemd, journald, sshd, cron, unattended-upgrades, the kernel's slabs)
# holds about 200 MB of it. What is left for nginx and the service, page cache included:
SERVER_LIMIT = 768 * MEGABYTE
UPLOADS = 20
RESUME_BYTES = 5 * MEGABYTE - 64 * 1024  # just under the 5 MB cap, with the form's other fields
MAILS = 2 * UPLOADS  # the association's email and the acknowledgement of each
ANSWER_TIMEOUT = 120.0
DELIVERY_TIMEOUT = 300.0
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

NO_CGROUP = cgroup.unavailable()
pytestmark = pytest.mark.skipif(NO_CGROUP is not None, reason=f"no memory cgroup to run the servers in: {NO_CGROUP}")


def resumes() -> list[tuple[str, bytes, str]]:
    """Half PDFs, half Word documents (whose content check opens the package), each about 5 MB."""
    pdf, docx = samples.padded_pdf(RESUME_BYTES), samples.padded_docx(RESUME_BYTES)
    return [
        ("cv.pdf", pdf, "application/pdf") if number % 2 else ("cv.docx", docx, DOCX_TYPE) for number in range(UPLOADS)
    ]


def refusals(log: str) -> list[str]:
    """The log lines of submissions not accepted: each names why (views._log)."""
    return [line for line in log.splitlines() if "outcome=" in line and "outcome=accepted" not in line]


def post_all(url: str) -> list[int]:
    """The statuses of UPLOADS volunteer applications posted at once (a barrier releases them together)."""
    start = threading.Barrier(UPLOADS)

    def post(resume: tuple[str, bytes, str]) -> int:
        name, data, kind = resume
        files = multipart(volunteer_form(resume=(data, name, kind)))  # bytes: sent again whole if busy
        start.wait()
        try:  # sent again while the upload slots are all taken, as the site's script does
            return until_taken(
                lambda: requests.post(url, files=files, headers={**SITE, **JSON}, timeout=ANSWER_TIMEOUT)
            ).status_code
        except requests.ConnectionError:  # a killed process: the test reports the count, and why
            return 0

    with ThreadPoolExecutor(UPLOADS) as pool:
        return list(pool.map(post, resumes()))


@pytest.mark.parametrize("openpgp", [False, True], ids=["plain", "openpgp"])
def test_a_1_gb_server_survives_20_concurrent_5_mb_uploads(openpgp, smtp_sink_factory, smtp_ca_file, tmp_path):
    sink = smtp_sink_factory(auth=True)
    keys = {"PGP_KEYS": [str(pysequoia.Tsk.generate("Association <box@example.org>").extract_certificate())]}
    settings = service_settings(
        sink.mail_config(), smtp_ca_file, tmp_path / "data", PROXY_COUNT=1, **(keys if openpgp else {})
    )
    site_dir, nginx_dir = tmp_path / "site", tmp_path / "nginx"  # /forms is all this test asks for
    site_dir.mkdir()
    nginx_dir.mkdir()
    with MemoryCgroup(SERVER_LIMIT) as limited, Gunicorn(settings=settings, cgroup=limited) as server:
        nginx = LocalNginx(nginx_dir, site_dir, forms_port=server.port, cgroup=limited).start()
        try:
            workers = server.pids()[1:]
            assert {*server.pids(), nginx.process.pid} <= {*limited.pids()}, "the servers run outside the cgroup"
            statuses = post_all(nginx.url + "forms/volunteer")
            received = sink.handler.wait_for(MAILS, DELIVERY_TIMEOUT) if statuses.count(202) == UPLOADS else []
            still, figures = server.pids()[1:], limited.stats()
            report = (
                f"limit {SERVER_LIMIT / MEGABYTE:.0f} MB: statuses {statuses}, {len(received)}/{MAILS} "
                f"emails, workers {workers} then {still}, cgroup {describe(figures)}\n"
                f"refusals logged: {refusals(server.output())}\ngunicorn's log ends: {server.output()[-2000:]}"
            )
        finally:
            nginx.stop()
    assert figures.get("oom_kill", 0) == 0, report
    assert statuses == [202] * UPLOADS, report
    assert len(received) == MAILS, report
    assert sorted(still) == sorted(workers), report
    associations = [mail for mail in received if mail.rcpt_tos == ("volunteer@cch.example.org",)]
    assert len(associations) == UPLOADS, report
    if openpgp:
        assert all(mail.parsed().get_content_type() == "multipart/encrypted" for mail in associations)


def describe(figures: dict[str, int]) -> str:
    """The cgroup's figures for a failure message: sizes in MB, counts as they are."""
    return ", ".join(
        f"{name} {value / MEGABYTE:.0f} MB"
        if name in {"limit", "max_usage", "memsw_max_usage", "cache", "rss"}
        else f"{name} {value}"
        for name, value in figures.items()
    )

"""Under attack, the person in distress still gets through: the limits as production runs them,
`gunicorn forms_service.wsgi:app --workers 3`, default counter storage, behind one proxy
(FORMS_PROXY_COUNT=1, so each test speaks for its own clients with X-Forwarded-For).

The service allows 5 submissions a minute per client, and the defaults otherwise: 30 refusals a
minute, 3 urgent pages a day per client and per /48, 3 acknowledgements a day per inbox; a real
SMTP server receives what it sends.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import requests

from forms_service import i18n
from forms_service.compose import ACK_SKIPPED, PAGE_SKIPPED
from harness.gunicorn import DOCUMENTED_OPTIONS, Gunicorn
from harness.settings import JSON, OPERATOR, SITE, service_settings, support_form, volunteer_form
from harness.smtp_sink import Received, SmtpSink
from tests.deploy.helpers import multipart
from tests.service.helpers import wait_until

PAGED = ("support@cch.example.org", "urgent@cch.example.org")

PER_MINUTE = 5
URGENT_LIMIT = 3  # FORMS_URGENT_LIMIT's default
ACK_LIMIT = 3  # FORMS_ACK_LIMIT's default
STAFF = i18n.catalogue("fr")  # FORMS_STAFF_LANGUAGE's default
FOREIGN = {"Origin": "https://evil.example"}


@pytest.fixture(scope="module")
def server(sink, smtp_ca_file, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("abuse") / "data"
    settings = service_settings(
        sink.mail_config(),
        smtp_ca_file,
        data_dir,
        RATELIMIT_ENABLED=True,
        RATELIMIT_DEFAULT=f"{PER_MINUTE} per minute",
        ACK_LIMIT=ACK_LIMIT,
        URGENT_LIMIT=URGENT_LIMIT,
        PROXY_COUNT=1,
    )
    with Gunicorn(settings=settings, options=DOCUMENTED_OPTIONS) as running:
        running.data_dir = data_dir
        yield running


def post_as(server: Gunicorn, client: str, form: dict, origin: dict = SITE) -> requests.Response:
    """A post from `client` (the address nginx would forward), with the site's Origin unless told otherwise."""
    return requests.post(
        f"http://127.0.0.1:{server.port}/forms/support",
        data=form,
        timeout=30,
        headers={**origin, **JSON, "X-Forwarded-For": client},
    )


def apply_as(server: Gunicorn, client: str, form: dict) -> requests.Response:
    """A volunteer application from `client`, its CV sent as the site's form sends it (multipart)."""
    return requests.post(
        f"http://127.0.0.1:{server.port}/forms/volunteer",
        files=multipart(form),
        timeout=30,
        headers={**SITE, **JSON, "X-Forwarded-For": client},
    )


def by_message_id(sink: SmtpSink, ids: list[str], number: int) -> dict[str, Received]:
    """The delivered emails `<id.number@site.test>` of these submissions, by submission id."""
    wanted = {f"<{submission_id}.{number}@site.test>": submission_id for submission_id in ids}
    return {
        wanted[mail.parsed()["Message-ID"]]: mail for mail in sink.messages if mail.parsed()["Message-ID"] in wanted
    }


def plain_text(mail: Received) -> str:
    message = BytesParser(policy=policy.default).parsebytes(mail.data)
    return message.get_body(("plain",)).get_content()


def test_a_hostile_page_cannot_lock_its_visitors_out(server):
    """60 posts a foreign page makes a visitor's browser send cost the visitor nothing; past 30
    a minute (FORMS_RATELIMIT_REFUSALS) they get 429 instead of 403."""
    visitor = "198.51.100.10"
    foreign = [
        post_as(server, visitor, support_form(email="visitor@example.org"), FOREIGN).status_code for _ in range(60)
    ]
    assert foreign == [403] * 30 + [429] * 30
    own = [post_as(server, visitor, support_form(email="visitor@example.org")).status_code for _ in range(3)]
    assert own == [202, 202, 202]


def test_one_client_gets_the_configured_budget_whatever_the_worker(server):
    """15 posts at once, spread over the three workers: exactly the 5 a minute configured."""
    with ThreadPoolExecutor(5) as pool:
        answers = pool.map(
            lambda _: post_as(server, "198.51.100.20", support_form(email="burst@example.org")), range(15)
        )
        codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] * PER_MINUTE + [429] * (15 - PER_MINUTE)


def test_ten_submissions_naming_one_address_send_three_acknowledgements(server, sink):
    """Every request reaches the association; only the first 3 acknowledgements go out, whatever
    the spelling of the address, and the association's copy says when one was left out."""
    spellings = ["target@example.org", "Target+1@example.org", "target+news@example.org"]
    answers = [post_as(server, f"198.51.100.{30 + n}", support_form(email=spellings[n % 3])) for n in range(10)]
    assert [answer.status_code for answer in answers] == [202] * 10
    ids = [answer.json()["id"] for answer in answers]
    # Copies and acknowledgements are separate spool rows, delivered in any order: wait for both.
    assert wait_until(lambda: len(by_message_id(sink, ids, 1)) == 10, 30)
    assert wait_until(lambda: len(by_message_id(sink, ids, 2)) >= ACK_LIMIT, 30)
    association = by_message_id(sink, ids, 1)
    acknowledged = by_message_id(sink, ids, 2)
    assert sorted(acknowledged) == sorted(ids[:ACK_LIMIT])
    note = STAFF.gettext(ACK_SKIPPED)
    assert [note in plain_text(association[submission_id]) for submission_id in ids] == [False] * 3 + [True] * 7


def delivered(server: Gunicorn) -> bool:
    """Nothing left in the spool (as monitoring reads it): every email has reached the sink."""
    return json.loads(server.get("/forms/healthz", headers=OPERATOR)[1])["spool"]["depth"] == 0


def test_urgent_pages_to_on_call_are_limited_per_client(server, sink):
    """Past 3 urgent requests a day from one client, the request still reaches the support
    recipients, marked urgent; only the page to the on-call address is left out, and said so."""
    answers = [post_as(server, "198.51.100.50", support_form(urgent="on", email=f"u{n}@example.org")) for n in range(4)]
    other = post_as(server, "198.51.100.51", support_form(urgent="on", email="u9@example.org"))
    ids = [answer.json()["id"] for answer in [*answers, other]]
    assert wait_until(lambda: len(by_message_id(sink, ids, 1)) == 5, 30)
    association = by_message_id(sink, ids, 1)
    recipients = [association[submission_id].rcpt_tos for submission_id in ids]
    assert recipients == [PAGED, PAGED, PAGED, ("support@cch.example.org",), PAGED]
    assert all(association[submission_id].parsed()["Subject"].startswith("URGENT") for submission_id in ids)
    note = STAFF.gettext(PAGE_SKIPPED)
    assert [note in plain_text(association[submission_id]) for submission_id in ids] == [False] * 3 + [True, False]


def test_eight_64s_of_one_48_page_the_on_call_address_at_most_3_times(server, sink):
    """A /48 (a tunnel broker's free allocation) holds 65,536 /64s: the urgent quota counts it too."""
    clients = [f"2001:db8:4800:{subnet:x}::1" for subnet in range(8)]
    answers = [
        post_as(server, client, support_form(urgent="on", email=f"net{n}@example.org"))
        for n, client in enumerate(clients)
    ]
    assert [answer.status_code for answer in answers] == [202] * 8
    ids = [answer.json()["id"] for answer in answers]
    assert wait_until(lambda: len(by_message_id(sink, ids, 1)) == 8 and delivered(server), 30)
    paged = [mail for mail in by_message_id(sink, ids, 1).values() if "urgent@cch.example.org" in mail.rcpt_tos]
    print(f"\n8 urgent requests from 8 /64s of one /48: the on-call address paged {len(paged)} times")
    assert len(paged) == URGENT_LIMIT


def test_eight_spellings_of_one_gmail_inbox_get_3_acknowledgements(server, sink):
    """Dots, case, +tags and googlemail.com: one inbox, one quota; count what reaches the sink."""
    spellings = [
        "jane.doe@gmail.com",
        "JaneDoe@gmail.com",
        "j.a.n.e.doe@gmail.com",
        "jane.doe+cv@gmail.com",
        "janedoe@googlemail.com",
        "Jane.Doe@GoogleMail.com",
        "jane.d.o.e+help@gmail.com",
        "JANE.DOE@GMAIL.COM",
    ]
    answers = [
        post_as(server, f"203.0.113.{10 + n}", support_form(email=spelling)) for n, spelling in enumerate(spellings)
    ]
    assert [answer.status_code for answer in answers] == [202] * 8
    ids = [answer.json()["id"] for answer in answers]
    assert wait_until(lambda: len(by_message_id(sink, ids, 1)) == 8 and delivered(server), 30)
    inbox = {spelling.lower() for spelling in spellings}
    arrived = [mail for mail in sink.messages if {address.lower() for address in mail.rcpt_tos} <= inbox]
    print(f"\n8 spellings of one Gmail inbox: {len(arrived)} acknowledgements arrived")
    assert len(arrived) == ACK_LIMIT


def test_40_refusals_from_one_address_never_lock_out_a_valid_request(server):
    """Behind one NAT (a hotel, an office, a camp's Wi-Fi), one person's refused posts must not
    refuse the next person's request for help: past the refusal budget (30 a minute), refusals
    get 429, the valid request 202."""
    shared = "198.51.100.60"
    refused = [post_as(server, shared, support_form(email="not an address")).status_code for _ in range(40)]
    assert refused == [400] * 30 + [429] * 10
    assert post_as(server, shared, support_form(email="someone.else@example.org")).status_code == 202


def test_past_its_refusals_a_client_gets_429_for_uploads_before_a_slot_is_taken(server):
    """The upload slots serve every volunteer: a client whose files keep being refused may not hold them.
    Its requests for help still get in."""
    hostile = "198.51.100.61"
    not_a_cv = (io.BytesIO(b"not a CV"), "cv.pdf", "application/pdf")
    refused = [apply_as(server, hostile, volunteer_form(resume=not_a_cv)) for _ in range(31)]
    assert [answer.status_code for answer in refused] == [400] * 30 + [429]
    assert int(refused[-1].headers["Retry-After"]) > 0
    assert apply_as(server, hostile, volunteer_form()).status_code == 429  # not read: valid or not
    assert post_as(server, hostile, support_form()).status_code == 202
    assert apply_as(server, "198.51.100.62", volunteer_form()).status_code == 202  # another volunteer


def test_the_data_folder_holds_no_client_address_in_clear(server):
    """Counters are keyed by HMAC: neither the clients nor the addresses they named are readable."""
    clients = ["203.0.113.77", "2001:db8:77:1::5"]
    for client in clients:
        assert post_as(server, client, support_form(email="cleartext@example.org")).status_code == 202
        assert post_as(server, client, support_form(), FOREIGN).status_code == 403
    files = [path for path in Path(server.data_dir).rglob("*") if path.is_file()]
    assert any(path.name.startswith("counters.sqlite3") for path in files)
    stored = b"".join(path.read_bytes() for path in files)
    secrets = ["203.0.113.77", "2001:db8:77:1::", "2001:db8:77:1::5", "cleartext@example.org", "198.51.100."]
    assert [secret for secret in secrets if secret.encode() in stored] == []

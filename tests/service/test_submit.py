"""Both forms end to end against a real SMTP server: what arrives, and what the client is told."""

from __future__ import annotations

import io
import re
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser

import pytest

from harness import samples
from harness.settings import JSON, OPERATOR, support_form, volunteer_form
from harness.smtp_sink import SmtpSink
from tests.service.helpers import deliver, post

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,}$")


def mails_by_recipient(smtp_server):
    return {rcpt: message for message in smtp_server.messages for rcpt in message.rcpt_tos}


@pytest.mark.parametrize("kind", sorted(samples.SAMPLES))
def test_volunteer_application_is_relayed_with_resume_byte_identical(client, smtp_server, kind):
    make, mime, extension = samples.SAMPLES[kind]
    document = make()
    upload = (io.BytesIO(document), f"My CV.{extension}", "application/octet-stream")
    response = post(client, "volunteer", volunteer_form(resume=upload), JSON)

    assert response.status_code == 202
    submission_id = response.get_json()["id"]
    assert ID_PATTERN.match(submission_id)
    received = mails_by_recipient(smtp_server)
    association = received["volunteer@cch.example.org"]
    assert association.tls and association.authenticated
    message = association.parsed()
    assert message["Reply-To"] == "amina@example.org"
    assert message["Message-ID"] == f"<{submission_id}.1@site.test>"
    assert message["Subject"] == "Candidature bénévole de Amina Haddad"
    assert association.mail_from == "forms@cch.example.org"
    body = message.get_body(("plain",)).get_content()
    for text in (
        "Amina Haddad",
        "amina@example.org",
        "I want to listen.",
        "Arabic, French, English",
        "Amman, UTC+3",
        "Psychological first aid",
        f"My_CV.{extension}",
    ):
        assert text in body
    assert "Amina Haddad" in message.get_body(("html",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == mime
    assert attachment.get_filename() == f"My_CV.{extension}"
    assert attachment.get_content() == document


ACK_SUBJECTS = {
    ("volunteer", "fr"): "Nous avons bien reçu votre candidature",
    ("volunteer", "en"): "We have received your application",
    ("support", "fr"): "Nous avons bien reçu votre demande",
    ("support", "en"): "We have received your request",
}


FREE_TEXT = ("name", "email", "motivation", "languages", "location", "availability", "training", "message", "phone")


def typed_values(form: dict) -> list[str]:
    """Every free text the person typed, and its longer words, as they could be echoed."""
    texts = [form[name] for name in FREE_TEXT if form.get(name)]
    return texts + [word for text in texts for word in text.split() if len(word) > 3]


def plain_text(message) -> str:
    """The text part with the newlines a reader sees."""
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


@pytest.mark.parametrize(("form_name", "language"), sorted(ACK_SUBJECTS))
def test_acknowledgement_is_in_the_submitter_language_and_echoes_nothing(client, smtp_server, form_name, language):
    form = (volunteer_form if form_name == "volunteer" else support_form)(
        lang=language,
        name="Zoé Quintessence",
        # Words of their own: the acknowledgement's crisis guidance says "mission" and "cannot" too.
        **(
            {"motivation": "Motivation très singulière"}
            if form_name == "volunteer"
            else {"urgent": "on", "message": "Insomnies singulières"}
        ),
    )
    response = post(client, form_name, form, JSON)

    assert response.status_code == 202
    address = form["email"]
    ack = mails_by_recipient(smtp_server)[address]
    assert ack.rcpt_tos == (address,)
    message = ack.parsed()
    assert message["Subject"] == ACK_SUBJECTS[form_name, language]
    assert message["Message-ID"] == f"<{response.get_json()['id']}.2@site.test>"
    assert message["Content-Language"] == language
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Reply-To"] is None and not list(message.iter_attachments())
    text, html = (message.get_body((kind,)).get_content() for kind in ("plain", "html"))
    assert ACK_SUBJECTS[form_name, language] in text
    assert f'<html lang="{language}">' in html
    bodies = text + html + message["Subject"]
    assert [typed for typed in typed_values(form) if typed in bodies] == []
    assert {typed for typed in typed_values(form) if typed in ack.data.decode("utf-8", "replace")} == {address}  # To


def test_association_email_reads_well_in_english(make_app, smtp_server):
    """FORMS_STAFF_LANGUAGE=en: subject, labels, choices and notes in English; what was typed
    is laid out one field a block, escaped in the HTML part."""
    client = make_app(STAFF_LANGUAGE="en").test_client()
    response = post(
        client, "support", support_form(lang="fr", urgent="on", message="<b>Tired</b> & alone\nReally"), JSON
    )
    assert response.status_code == 202
    message = mails_by_recipient(smtp_server)["support@cch.example.org"].parsed()
    assert message["Subject"] == f"URGENT: support request {response.get_json()['id'][:8]}"
    assert message["Content-Language"] == "en"
    text = plain_text(message)
    for block in (
        "Your message:\n    <b>Tired</b> & alone\n    Really\n",
        "Your situation:\n    Between two missions\n",
        "Marked as urgent:\n    Yes\n",
        "Consent to the privacy policy:\n    Yes\n",
        "Language of the form: French\n",
        "please answer as soon as possible",
    ):
        assert block in text
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;Tired&lt;/b&gt; &amp; alone" in html and "<b>Tired" not in html
    assert '<html lang="en">' in html and "Consent to the privacy policy" in html


def test_association_email_follows_french_typography(client, smtp_server):
    response = post(client, "volunteer", volunteer_form(), JSON)
    assert response.status_code == 202
    text = plain_text(mails_by_recipient(smtp_server)["volunteer@cch.example.org"].parsed())
    for block in (
        "Nom complet :\n    Amina Haddad\n",
        "Motivation :\n",
        "CV (en pièce jointe) :\n    CV_Amina.pdf\n",
        f"Référence : {response.get_json()['id']}\n",
        "Langue du formulaire : Anglais\n",
    ):
        assert block in text


def test_support_request_subject_carries_no_personal_data(client, smtp_server):
    response = post(client, "support", support_form(), JSON)

    assert response.status_code == 202
    submission_id = response.get_json()["id"]
    association = mails_by_recipient(smtp_server)["support@cch.example.org"]
    assert association.rcpt_tos == ("support@cch.example.org",)
    message = association.parsed()
    assert message["Subject"] == f"Demande de soutien {submission_id[:8]}"
    assert message["Reply-To"] == "aidworker@example.org"
    body = message.get_body(("plain",)).get_content()
    for text in ("Sam", "cannot sleep", "Entre deux missions", "Par téléphone", "+41 22 000 00 00", "Anglais"):
        assert text in body
    ack = mails_by_recipient(smtp_server)["aidworker@example.org"].parsed()
    assert ack["Subject"] == "We have received your request"
    assert "not an emergency service" in ack.get_body(("plain",)).get_content()


def test_urgent_support_request_also_goes_to_urgent_recipients_and_is_marked(client, smtp_server):
    response = post(client, "support", support_form(urgent="on"), JSON)

    assert response.status_code == 202
    association = mails_by_recipient(smtp_server)["support@cch.example.org"]
    assert association.rcpt_tos == ("support@cch.example.org", "urgent@cch.example.org")
    message = association.parsed()
    assert message["Subject"].startswith("URGENT")
    assert "Sam" not in message["Subject"] and "aidworker" not in message["Subject"]
    assert "urgente" in message.get_body(("plain",)).get_content()


def test_minimal_support_request_with_only_required_fields(client, smtp_server):
    form = {"email": "x@example.org", "consent": "on"}
    response = post(client, "support", form, JSON)

    assert response.status_code == 202
    body = mails_by_recipient(smtp_server)["support@cch.example.org"].parsed().get_body(("plain",)).get_content()
    assert "(non renseigné)" in body


@pytest.mark.parametrize(
    ("language", "accept", "prefix"),
    [
        ("en", None, "/en"),
        ("fr", None, ""),
        (None, "en-GB,en;q=0.8", "/en"),
        (None, "de-CH", ""),
        ("xx", None, ""),
    ],
)
def test_plain_post_redirects_to_thanks_page_in_language(client, smtp_server, language, accept, prefix):
    headers = {"Accept-Language": accept} if accept else {}
    form = support_form(lang=language)
    response = post(client, "support", form, {"Accept": "text/html,*/*;q=0.8", **headers})

    assert response.status_code == 303
    assert response.headers["Location"] == f"https://site.test{prefix}/support-thanks.html"
    assert len(smtp_server.messages) == 2


def test_volunteer_plain_post_redirects_to_volunteer_thanks(client, smtp_server):
    response = post(client, "volunteer", volunteer_form(lang="en"))
    assert response.status_code == 303
    assert response.headers["Location"] == "https://site.test/en/volunteer-thanks.html"


@pytest.mark.parametrize("form_name", ["volunteer", "support"])
def test_honeypot_answers_as_success_and_relays_nothing(client, smtp_server, form_name):
    make_form = volunteer_form if form_name == "volunteer" else support_form
    response = post(client, form_name, make_form(website="http://spam.example"), JSON)
    assert response.status_code == 202
    assert ID_PATTERN.match(response.get_json()["id"])

    html = post(client, form_name, make_form(website="http://spam.example", lang="en"))
    assert html.status_code == 303
    assert html.headers["Location"] == f"https://site.test/en/{form_name}-thanks.html"
    assert smtp_server.messages == []


def test_healthz_reports_spool_figures_without_personal_data_to_the_operator(client):
    response = client.get("/forms/healthz", headers=OPERATOR)
    assert response.status_code == 200
    assert response.get_json() == {
        "ok": True,
        "status": "OK",
        "reasons": [],
        "spool": {"depth": 0, "dead": 0, "oldest_age_seconds": None},
    }


def test_smtp_down_submissions_are_accepted_spooled_then_delivered(make_app, smtp_ca):
    """Acceptance no longer waits for SMTP: 202 once on disk, relayed when the server is back."""
    sink = SmtpSink(smtp_ca)  # not started: connections are refused
    app = make_app(**sink.mail_config())
    client = app.test_client()
    response = post(client, "support", support_form(lang="en"), JSON)
    html = post(client, "volunteer", volunteer_form(lang="fr"))
    assert (response.status_code, html.status_code) == (202, 303)
    spool = client.get("/forms/healthz", headers=OPERATOR).get_json()["spool"]
    assert (spool["depth"], spool["dead"]) == (4, 0) and spool["oldest_age_seconds"] >= 0
    sink.start()
    try:
        app.extensions["forms_spool"].make_due()  # skip the retry delay
        assert deliver(app) == 4
    finally:
        sink.stop()
    submission_id = response.get_json()["id"]
    assert {message.parsed()["Message-ID"] for message in sink.messages} >= {
        f"<{submission_id}.1@site.test>",
        f"<{submission_id}.2@site.test>",
    }
    assert len(sink.messages) == 4
    assert client.get("/forms/healthz", headers=OPERATOR).get_json()["spool"]["depth"] == 0


def test_logs_of_a_whole_cycle_carry_ids_and_sizes_never_content(client, smtp_server, caplog):
    """Accepted, refused, honeypot, a 550 dead (the association's copy), a 451 retried, delivered:
    every log record of every logger (the test SMTP server's own aside) is free of what was typed or uploaded."""
    caplog.set_level("DEBUG")
    smtp_server.handler.script.extend(["550 5.7.1 Refused", "451 4.3.0 Try again later"])
    volunteer = volunteer_form()
    accepted = post(client, "volunteer", volunteer, JSON)
    urgent = post(client, "support", support_form(urgent="on"), JSON)
    refused = post(client, "support", support_form(email="aidworker@"), JSON)
    honeypot = post(client, "support", support_form(website="http://spam.example"), JSON)
    assert [response.status_code for response in (accepted, urgent, refused, honeypot)] == [202, 202, 400, 202]
    spool = client.application.extensions["forms_spool"]
    spool.make_due()
    deliver(client.application)
    assert (spool.stats().queued, spool.stats().dead) == (0, 1)

    logged = "\n".join(record.getMessage() for record in caplog.records if record.name != "mail.log")
    for response, outcome in ((accepted, "accepted"), (urgent, "accepted"), (honeypot, "honeypot")):
        assert f"submission id={response.get_json()['id']}" in logged and f"outcome={outcome}" in logged
    assert "outcome=refused" in logged and "will retry" in logged and "DEAD spool entry" in logged
    typed = typed_values(volunteer) + typed_values(support_form()) + ["CV Amina", "CV_Amina", "Psychological"]
    # Random ids (22 URL-safe characters) may spell a typed word by chance ("know" in "rOREudrRcTeuKNOwOirWcA").
    logged = re.sub(r"(?<![\w-])[\w-]{22}(?![\w-])", "<id>", logged)
    assert [secret for secret in typed if secret.lower() in logged.lower()] == []


def broken_compose(*args, **kwargs):
    raise UnicodeEncodeError("utf-8", "Amina secret", 0, 1, "boom")


@pytest.mark.parametrize(("lang", "start"), [("fr", "Désolés, une erreur"), ("en", "Sorry, something")])
def test_unexpected_error_is_a_clear_500_in_language_and_logs_every_frame_without_content(
    make_app, smtp_server, monkeypatch, caplog, lang, start
):
    """As production runs it (errors not propagated): the page in the submitter's language, and a
    log record naming each frame of the stack (file, line, function), never the message's values."""
    client = make_app(PROPAGATE_EXCEPTIONS=False).test_client()
    monkeypatch.setattr("forms_service.views.compose", broken_compose)
    response = post(client, "support", support_form(lang=lang), JSON)
    assert response.status_code == 500
    assert response.get_json()["error"].startswith(start)
    (record,) = [record for record in caplog.records if "unexpected" in record.getMessage()]
    logged = record.getMessage()
    assert logged.startswith("unexpected UnicodeEncodeError on POST /forms/support, stack")
    for frame in ("flask/app.py:", "forms_service/views.py:", " in submit", "test_submit.py:", " in broken_compose"):
        assert frame in logged
    assert record.exc_info is None and "secret" not in caplog.text and "boom" not in caplog.text
    assert smtp_server.messages == []


def test_unexpected_errors_propagate_in_testing_mode(client, monkeypatch):
    monkeypatch.setattr("forms_service.views.compose", broken_compose)
    with pytest.raises(UnicodeEncodeError):
        post(client, "support", support_form(), JSON)


def test_a_long_non_ascii_sender_name_stays_one_valid_from(make_app, smtp_server):
    """RFC 2047 words of at most 75 characters, folded, read back as the same name and address."""
    name = "Écoute entre pairs humanitaires de CoCreate Humanity à Genève et ailleurs"
    client = make_app(MAIL_DEFAULT_SENDER=f"{name} <forms@cch.example.org>").test_client()
    assert post(client, "support", support_form(), JSON).status_code == 202
    assert len(smtp_server.messages) == 2  # the association's email and the acknowledgement
    for received in smtp_server.messages:
        head = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
        assert all(len(word) <= 75 for word in re.findall(r"=\?[^?]+\?[qQbB]\?[^?]*\?=", head))
        # RFC 2047's decoder: the email package's modern parser keeps the fold between words as a space.
        raw_from = BytesHeaderParser().parsebytes(received.data)["From"]
        assert str(make_header(decode_header(raw_from))) == f"{name} <forms@cch.example.org>"
        assert received.mail_from == "forms@cch.example.org"


def test_bounces_go_to_the_envelope_sender_while_from_stays(make_app, smtp_server):
    """FORMS_MAIL_ENVELOPE_FROM: MAIL FROM (where bounces go) of every email, the From readers see unchanged."""
    client = make_app(MAIL_ENVELOPE_FROM="bounces@cch.example.org").test_client()
    assert post(client, "support", support_form(), JSON).status_code == 202
    assert len(smtp_server.messages) == 2
    for received in smtp_server.messages:
        assert received.mail_from == "bounces@cch.example.org"
        assert received.parsed()["From"] == "CoCreate Humanity <forms@cch.example.org>"

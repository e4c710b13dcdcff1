"""The HTTP interface: one endpoint per form of fields.py, the health check, and every error answer."""

from __future__ import annotations

import math
import secrets
import time

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError, UnsupportedMediaType
from werkzeug.wsgi import LimitedStream

from . import answers, extensions, guard, health, ratelimit
from .compose import MailSettings, compose, is_urgent
from .fields import FORMS
from .form_model import N_, Form
from .messages import SPOOL_FULL
from .openpgp import GnuPGFailed, NoUsableKey
from .spool import SpoolFull, SpoolUnavailable
from .validation import Submission, validate

bp = Blueprint("forms", __name__, url_prefix="/forms")

FORM_ENCODINGS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
# What an over-size answer reads off the socket at most (see _drain_body).
DRAIN_LIMIT = 128 * 1024 * 1024
DRAIN_SECONDS = 5.0
DRAIN_CHUNK = 64 * 1024
# Every upload slot taken: one frees within seconds (the site's script sends the form again).
BUSY = N_("Sorry, we are receiving many forms just now. Nothing was sent. Please try again in a minute.")
BUSY_RETRY_SECONDS = 10
SPOOL_FULL_RETRY_SECONDS = 3600  # what SPOOL_FULL tells a person: an hour


# Only the forms of fields.py: any other path stays a 404 (405 for a GET of a form) before any budget is spent.
@bp.post(f"/<any({', '.join(FORMS)}):form_name>")
def submit(form_name: str):
    """Validate, compose, hand over; answer success only once the emails are on disk. A form with a
    file is worked on only within an upload slot (upload_slots.py), taken before its body is read."""
    form = FORMS[form_name]
    if request.mimetype not in FORM_ENCODINGS:
        raise UnsupportedMediaType()
    if not form.takes_file:
        return _submit(form)
    wait = ratelimit.upload_wait()
    if wait:
        return answers.failure(429, answers.language(), form, retry_after=math.ceil(wait))
    with extensions.upload_slots(current_app).held() as slot:
        return _submit(form) if slot else _busy(form)


def _submit(form: Form):
    submission = validate(form, *_parsed_body())
    language = answers.language()
    submission_id = secrets.token_urlsafe(16)
    if submission.honeypot:
        _log(submission_id, submission, "honeypot")
        return answers.accepted(form, submission_id, language)
    if not submission.ok:
        _log(submission_id, submission, "refused")
        return answers.refused(submission, language)
    settings = extensions.mail_settings(current_app)
    quotas = _within_quotas(submission, settings)
    try:  # on disk (sealed) when it returns: the background deliverer relays them
        mails = compose(submission, submission_id, language, settings, **quotas)
        extensions.spool(current_app).accept(submission_id, mails, reserve=form.uses_reserve)
    except SpoolFull:  # the forms that use the reserve still get in
        _log(submission_id, submission, "spool-full")
        if form.uses_reserve:  # past the whole bound: nothing gets in now
            health.submission_failed(current_app)
        return answers.failure(503, language, form, SPOOL_FULL, retry_after=SPOOL_FULL_RETRY_SECONDS)
    except NoUsableKey:  # never sent in clear: refused, and said so (the health check is red too)
        _failed(submission_id, submission, "no-usable-openpgp-key")
        return answers.failure(503, language, form)
    except GnuPGFailed as error:  # as above; the operator must act (README, "OpenPGP")
        current_app.logger.error("OpenPGP encryption failed: %s", error)
        _failed(submission_id, submission, "openpgp-failed")
        return answers.failure(503, language, form)
    except SpoolUnavailable as error:
        _failed(submission_id, submission, f"spool-unavailable ({error})")
        return answers.failure(503, language, form)
    ratelimit.submission_accepted()
    _log(submission_id, submission, "accepted")
    return answers.accepted(form, submission_id, language)


def _failed(submission_id: str, submission: Submission, outcome: str) -> None:
    """A submission we could not accept: logged, and the public health answer red at once."""
    _log(submission_id, submission, outcome)
    health.submission_failed(current_app)


def _busy(form: Form):
    """503 at once when every upload slot is taken; the site's script sends it again after Retry-After."""
    _drain_body()
    current_app.logger.info("submission form=%s outcome=busy request_bytes=%s", form.name, request.content_length)
    return answers.failure(503, answers.language(), form, BUSY, retry_after=BUSY_RETRY_SECONDS)


def _within_quotas(submission: Submission, settings: MailSettings) -> dict[str, bool]:
    """Which emails beyond the association's this submission may send today (ratelimit.py)."""
    quotas = ratelimit.limits()
    address = submission.reply_address
    pages = is_urgent(submission) and bool(settings.urgent_recipients)
    return {
        "acknowledge": bool(address) and quotas.acknowledgement_allowed(address),
        "page_on_call": not pages or quotas.urgent_page_allowed(),
    }


def _parsed_body():
    """The form fields and files; a body the WSGI server itself cannot read is a 400 (gunicorn's own errors
    from wsgi.input, InvalidChunkSize, NoMoreData..., would otherwise end as a 500)."""
    try:
        return request.form, request.files
    except HTTPException:
        raise  # 413 and friends keep their own answer
    except Exception as error:
        raise BadRequest() from error


@bp.get("/healthz")
def healthz():
    """Whether submissions can be accepted now (503 if not); the spool's figures only
    for the operator's token (health.py)."""
    operator = health.is_operator(request.headers.get("Authorization"), current_app.config["HEALTH_TOKEN"])
    body, status = health.answer(current_app, extensions.mail_settings(current_app).keyring, operator)
    return jsonify(body), status


@bp.before_request
def check_origin() -> None:
    """Refuse posts sent from pages of other sites (before the body is even read)."""
    if request.method == "POST" and not guard.origin_allowed(current_app.config["ALLOWED_ORIGINS"]):
        abort(403)  # before the body is parsed: it may be hostile or huge


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    """Every HTTP error as a clear answer in the submitter's language."""
    _drain_body()
    response = answers.failure(error.code or 500, answers.language(), answers.form_of_path())
    if error.code == 405:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods or ()))
    return response


@bp.app_errorhandler(InternalServerError)
def unexpected_error(error: InternalServerError):
    """Last resort: never a bare 500. Flask calls this only when it does not propagate the
    error (debug and testing do); the stack was logged by FormsApp.log_exception."""
    return answers.failure(500, answers.language(), answers.form_of_path())


def _drain_body() -> None:
    """Read and discard an unread body: a socket closed with unread data makes the kernel send a reset, and
    browsers then show "connection reset" instead of our page. Bounded in bytes and in time, so a hostile
    endless body costs a worker no more than a few seconds; a body known to exceed the bound is left."""
    stream = _unread_body()
    if stream is None:
        return
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = 0
    try:
        while drained < DRAIN_LIMIT and time.monotonic() < deadline and (chunk := stream.read(DRAIN_CHUNK)):
            drained += len(chunk)
    except (HTTPException, OSError):  # a client gone, or a broken body (gunicorn's errors are OSErrors)
        return


def _unread_body():
    """The rest of the request body as a stream that ends with it, or None if not worth reading: with a
    Content-Length, a LimitedStream (the parser's, if it began: the server's raw input would wait for more
    past the body); without (chunked), the server's own input, when it says it ends there."""
    length = request.content_length
    if length is None:
        return request.environ["wsgi.input"] if request.environ.get("wsgi.input_terminated") else None
    if not length or length > DRAIN_LIMIT:
        return None
    return request.__dict__.get("stream") or LimitedStream(request.environ["wsgi.input"], length)


def _log(submission_id: str, submission: Submission, outcome: str) -> None:
    """One line per submission: id, form, outcome and sizes, never content."""
    document = submission.document
    current_app.logger.info(
        "submission id=%s form=%s outcome=%s request_bytes=%s text_bytes=%d file_bytes=%d",
        submission_id,
        submission.form.name,
        outcome,
        request.content_length,
        submission.text_bytes,
        len(document.data) if document else 0,
    )

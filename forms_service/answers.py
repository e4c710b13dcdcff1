"""How the service answers: JSON for scripts, redirects and HTML pages for plain form posts.

Every answer is in the submitter's language; problems are listed per field
so both the JavaScript form and a person without JavaScript can fix them.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, redirect, render_template, request, url_for
from markupsafe import escape

from . import form_page, i18n
from .fields import FORMS, LONG_TEXT_MAX, RESUME_MAX_BYTES
from .form_model import FILE, HIDDEN, HONEYPOT, MEGABYTE, Form
from .guard import style_nonce
from .messages import (
    BACK_KEEPS,
    BACK_TO_FORM,
    BACK_TO_SITE,
    CORRECT_BELOW,
    FAILED_TITLE,
    REFUSED_NOTICE,
    REFUSED_TITLE,
    failure_message,
)
from .validation import Submission


def language() -> str:
    """The page's language (its form's `lang` field, else `?lang=` in the form's address), else
    Accept-Language, else French. The body is never parsed just for this (after a 413 or before the origin
    check it must stay unread), so a refusal given before reading it (413, 429) goes by the address."""
    form = request.__dict__.get("form")
    field = form.get("lang") if form is not None else None
    return i18n.negotiate((field, request.args.get("lang")), request.headers.get("Accept-Language"))


def form_of_path() -> Form | None:
    """The form a request was aimed at, for a link back, even when routing failed."""
    return FORMS.get(request.path.rstrip("/").rsplit("/", 1)[-1])


def wants_json() -> bool:
    """True when the client (our script) prefers JSON over HTML."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def site_url(language_code: str, page: str) -> str:
    """Absolute URL of a site page in a language: FORMS_SITE_URL + '' or '/en' + page."""
    return current_app.config["SITE_URL"].rstrip("/") + i18n.language_prefix(language_code) + page


def accepted(form: Form, submission_id: str, language_code: str) -> Response:
    """202 with the id for scripts; 303 to the thank-you page for browsers."""
    if wants_json():
        return _json(202, ok=True, id=submission_id)
    return redirect(site_url(language_code, form.thanks_page), 303)


def refused(submission: Submission, language_code: str) -> Response:
    """400 listing each problem: by field name (JSON); for a browser, the form's own page
    with the form filled in again and each problem beside its field, else a plain list."""
    catalogue = i18n.catalogue(language_code)
    errors = {name: problem.text(catalogue) for name, problem in submission.errors.items()}
    if wants_json():
        return _json(400, ok=False, errors=errors)
    form = submission.form
    typed = {
        item.name: request.form.get(item.name, "") for item in form.fields if item.kind not in (FILE, HIDDEN, HONEYPOT)
    }
    notice = render_template(
        "refused_notice.html",
        catalogue=catalogue,
        title=REFUSED_TITLE,
        notice=REFUSED_NOTICE,
        summary=f"#{form.name}-summary",
    )
    page = _form_page(400, form, catalogue, notice, values=typed, errors=errors)
    if page is not None:
        return page
    problems = [(catalogue.gettext(form[name].label), text) for name, text in errors.items()]
    return _page(400, catalogue, REFUSED_TITLE, form, problems=problems)


def _form_page(status: int, form: Form, catalogue: i18n.Catalogue, notice: str, **filled) -> Response | None:
    """The site's built page of the form, in the site's look (header, crisis line, footer), with `notice`
    under its title and the form in it `filled` (form_page.form_context's `values`, never the file, which
    cannot be, and `errors`); None without the built site (FORMS_SITE_DIR)."""
    language = catalogue.language
    built = form_page.built_page(current_app.config["SITE_DIR"], form, language)
    if built is None:
        return None
    endpoint = url_for("forms.submit", form_name=form.name).rsplit("/", 1)[0]  # where every form posts: /forms
    context = form_page.form_context(
        form,
        language,
        endpoint,
        thanks_url=site_url(language, form.thanks_page),
        privacy_url=site_url(language, form_page.PRIVACY_PAGE),
        **filled,
    )
    page = form_page.around(
        built,
        form,
        site_url(language, form.page),
        render_template(form_page.TEMPLATE, **context),
        title=str(escape(catalogue.gettext(REFUSED_TITLE))),
        notice=notice,
    )
    if page is None:
        return None
    # With no-referrer, a browser posts the form on this page with `Origin: null`, which
    # guard.py rightly refuses: this page's address (/forms/<name>?lang=..) names no one.
    return Response(page, status, mimetype="text/html", headers={"Referrer-Policy": "same-origin"})


def failure(
    status: int, language_code: str, form: Form | None, msgid: str | None = None, retry_after: int | None = None
) -> Response:
    """Any other refusal or failure, with one clear message (the status's own for this form, unless
    `msgid`), and when to try again (Retry-After), if said. A form posted without the script (a 413, a
    429, a 503...) is answered with its own page in the site's look, the message above an empty form: the
    body was not read, or not kept, so what was typed can only come back with the browser's Back button,
    and the page says so."""
    catalogue = i18n.catalogue(language_code)
    message = catalogue.gettext(
        msgid or failure_message(status, form),
        max_megabytes=RESUME_MAX_BYTES // MEGABYTE,
        max_length=LONG_TEXT_MAX,
    )
    response = None
    if wants_json():
        response = _json(status, ok=False, error=message)
    elif form is not None and request.method == "POST":
        notice = render_template(
            "refused_notice.html", catalogue=catalogue, title=REFUSED_TITLE, message=message, notice=BACK_KEEPS
        )
        response = _form_page(status, form, catalogue, notice)
    if response is None:
        response = _page(status, catalogue, REFUSED_TITLE if form else FAILED_TITLE, form, message=message)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _json(status: int, **content) -> Response:
    """A JSON answer as a Response (not a tuple), so callers can add headers such as Allow."""
    response = jsonify(**content)
    response.status_code = status
    return response


def _page(status: int, catalogue: i18n.Catalogue, title: str, form: Form | None, **content) -> Response:
    """The HTML error page, linking back to the form (or the site home) in the same language."""
    back_url = site_url(catalogue.language, form.page if form else "/")
    html = render_template(
        "error.html",
        catalogue=catalogue,
        nonce=style_nonce(),
        title=catalogue.gettext(title),
        back_url=back_url,
        back_label=catalogue.gettext(BACK_TO_FORM if form else BACK_TO_SITE),
        problems=content.get("problems"),
        message=content.get("message"),
        correct_below=CORRECT_BELOW,
        back_keeps=BACK_KEEPS,
    )
    return Response(html, status, mimetype="text/html")

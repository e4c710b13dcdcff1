"""The forms in Debian's Chromium: with and without JavaScript, by keyboard, with
files the service would refuse, with a connection that drops or a page reloaded, and
with a thank-you page that cannot load.

Site and service share one loopback origin; mail goes to the real aiosmtpd of
tests/conftest.py. Every page runs under the deploy Content-Security-Policy.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from forms_service import extensions, i18n
from forms_service.fields import FORMS, LONG_TEXT_MAX
from forms_service.form_model import CHECKBOX, FILE, MEGABYTE, SELECT
from forms_service.messages import (
    BACK_KEEPS,
    CHOOSE_FILE_AGAIN,
    DRAFT_KEPT,
    FAILURES,
    NETWORK_FAILURE,
    REFUSED_TITLE,
    failure_message,
)
from forms_service.views import BUSY_RETRY_SECONDS
from harness import samples
from tests.forms.helpers import CASES, LANGUAGES, RESUME, association_mails, site_path, typed_value
from tests.site.helpers import axe_violations

pytestmark = pytest.mark.browser


def document(data: bytes, name: str = "CV Amina.pdf", mime: str = "application/pdf") -> dict:
    """A file for set_input_files, as a person would pick it on their disk."""
    return {"name": name, "mimeType": mime, "buffer": data}


@pytest.fixture
def open_form(kept_page, origin, forms_app):
    """open_form(name, lang, javascript=True, locale=None) -> a new page showing that form (locale: the
    browser's own language, its Accept-Language).

    Fails the test if a page breaks the Content-Security-Policy or throws.
    """
    problems = []

    def open_(name: str, lang: str, javascript: bool = True, locale: str | None = None):
        page = kept_page(origin.url, java_script_enabled=javascript, locale=locale)
        page.on(
            "console",
            lambda message: (
                message.type == "error" and "Content Security Policy" in message.text and problems.append(message.text)
            ),
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(origin.url + site_path(lang, FORMS[name].page))
        return page

    yield open_
    assert problems == []


def asked(name: str) -> list:
    """The fields a person is asked to fill in once each select has its first choice (as fill_in
    chooses): a question asked only for some answers (Field.shown_when) is hidden for others."""
    answers = {field.name: field.choices[0].value for field in FORMS[name].fields if field.kind == SELECT}
    return [field for field in FORMS[name].visible_fields if field.is_asked(answers)]


def fill_in(page, name: str, resume: dict | None = None) -> None:
    """Fill in every field a person is asked, validly, the way they would."""
    for field in asked(name):
        control = page.locator(f"#{name}-{field.name}")
        if field.kind == FILE:
            control.set_input_files(resume or document(RESUME))
        elif field.kind == CHECKBOX:
            control.check()
        elif field.kind == SELECT:
            control.select_option(index=1)
        else:
            control.fill(typed_value(field))


def send(page, name: str) -> None:
    page.locator(f"#{name}-form [type=submit]").click()


def thanks_url(origin, name: str, lang: str) -> str:
    return origin.url + site_path(lang, FORMS[name].thanks_page)


def record_posts(page) -> list[str]:
    """The URLs of every POST the page makes from now on."""
    posts: list[str] = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    return posts


def expect_field_error(page, name: str, field: str, text: str) -> None:
    """The error is said next to the field, and the field points at it."""
    control = page.locator(f"#{name}-{field}")
    expect(page.locator(f"#{name}-{field}-error")).to_have_text(text)
    expect(control).to_have_attribute("aria-invalid", "true")
    assert f"{name}-{field}-error" in control.get_attribute("aria-describedby").split()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("name, lang", CASES)
def test_a_filled_in_form_lands_on_its_thanks_page_and_reaches_the_association(
    open_form, origin, forms_app, smtp_server, name, lang, javascript
):
    page = open_form(name, lang, javascript)
    fill_in(page, name)
    send(page, name)
    page.wait_for_url(thanks_url(origin, name, lang))
    assert page.locator("html").get_attribute("lang") == lang
    [mail] = association_mails(forms_app, smtp_server, name)
    attachments = [part.get_content() for part in mail.iter_attachments()]
    assert attachments == ([RESUME] if name == "volunteer" else [])


def expect_the_sites_look(page, lang: str) -> None:
    """The site's header, logo, crisis line and footer, styled by the site's own stylesheets, in the page's
    language."""
    assert page.locator("html").get_attribute("lang") == lang
    expect(page.locator(".md-header .md-logo")).to_be_visible()
    expect(page.locator(".cch-crisis-line a[href='tel:143']")).to_be_visible()
    expect(page.locator(".md-footer")).to_be_attached()
    # Material's stylesheet makes the header sticky, ours frames the summary: both were allowed and loaded.
    assert page.locator(".md-header").evaluate("header => getComputedStyle(header).position") == "sticky"
    assert page.locator(".cch-form__summary").evaluate("box => getComputedStyle(box).borderTopWidth") == "3px"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_without_javascript_a_refusal_gives_the_form_back_filled_in_on_the_sites_page(
    open_form, origin, forms_app, smtp_server, lang
):
    page = open_form("volunteer", lang, javascript=False)
    fill_in(page, "volunteer")
    page.locator("#volunteer-email").fill("amina@localhost")  # the browser accepts it, the service does not
    send(page, "volunteer")
    page.wait_for_url(f"**/forms/volunteer?lang={lang}")
    catalogue, form = i18n.catalogue(lang), FORMS["volunteer"]
    expect_the_sites_look(page, lang)
    assert page.title().startswith(catalogue.gettext(REFUSED_TITLE))
    expect_field_error(page, "volunteer", "email", catalogue.gettext(form["email"].error("email")))
    expect(page.locator("#volunteer-email")).to_have_value("amina@localhost")
    for field in asked("volunteer"):
        if field.kind not in (FILE, CHECKBOX) and field.name != "email":
            expect(page.locator(f"#volunteer-{field.name}")).to_have_value(typed_value(field))
    expect(page.locator("#volunteer-consent")).to_be_checked()
    expect(page.locator("#volunteer-resume-again")).to_have_text(catalogue.gettext(CHOOSE_FILE_AGAIN))
    # The form given back posts again, and works.
    page.locator("#volunteer-email").fill(typed_value(form["email"]))
    page.locator("#volunteer-resume").set_input_files(document(RESUME))
    send(page, "volunteer")
    page.wait_for_url(thanks_url(origin, "volunteer", lang))
    [mail] = association_mails(forms_app, smtp_server, "volunteer")
    assert [part.get_content() for part in mail.iter_attachments()] == [RESUME]


def test_a_form_given_back_is_accessible(open_form, forms_app):
    """axe needs scripts: the page is posted as without the forms script, then checked."""
    page = open_form("support", "en")
    fill_in(page, "support")
    page.locator("#support-email").fill("amina@localhost")
    with page.expect_navigation():
        page.evaluate("document.getElementById('support-form').submit()")  # as without the forms script
    expect(page.locator("#support-email-error")).to_be_visible()
    assert axe_violations(page) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_without_javascript_a_refused_support_request_keeps_the_crisis_numbers_and_our_address(
    open_form, origin, forms_app, smtp_server, lang
):
    page = open_form("support", lang, javascript=False)
    fill_in(page, "support")
    page.locator("#support-contact").select_option("phone")
    page.locator("#support-phone").fill("")
    send(page, "support")
    page.wait_for_url(f"**/forms/support?lang={lang}")
    catalogue, form = i18n.catalogue(lang), FORMS["support"]
    expect_the_sites_look(page, lang)
    expect_field_error(page, "support", "phone", catalogue.gettext(form["phone"].error("required")))
    for number in ("144", "112", "143"):
        expect(page.locator(f"a[href='tel:{number}']").first).to_be_visible()
    expect(page.locator("a[href='mailto:info@cocreatehumanity.org']").first).to_be_visible()
    expect(page.locator("#support-message")).to_have_value(typed_value(form["message"]))
    page.locator("#support-phone").fill(typed_value(form["phone"]))
    send(page, "support")
    page.wait_for_url(thanks_url(origin, "support", lang))
    assert len(association_mails(forms_app, smtp_server, "support")) == 1


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_too_many_attempts_is_said_in_the_pages_language_not_the_browsers(open_form, origin, make_app, javascript):
    """The limit refuses before the form's `lang` field is read: the form's address carries it."""
    origin.forms = make_app(
        SITE_URL=origin.name,
        ALLOWED_ORIGINS=[origin.name],
        SITE_DIR=str(origin.dir),
        RATELIMIT_ENABLED=True,
        RATELIMIT_DEFAULT="1 per minute",
    )
    page = open_form("support", "en", javascript, locale="fr-FR")
    for attempt in range(2):
        page.goto(origin.url + site_path("en", FORMS["support"].page))
        fill_in(page, "support")
        send(page, "support")
        if not attempt:
            page.wait_for_url(thanks_url(origin, "support", "en"))
    message = i18n.catalogue("en").gettext(FAILURES[429])
    if javascript:
        expect(page.locator("#support-summary")).to_contain_text(message)
    else:
        page.wait_for_url("**/forms/support?lang=en")
        expect_the_refusal_on_the_forms_page(page, "en", message)


def expect_the_refusal_on_the_forms_page(page, lang: str, message: str) -> None:
    """A post refused whole, without the script: the form's own page in the site's look, which says why
    and that the browser's Back button keeps what was typed (the page cannot: the body was not read)."""
    expect_the_sites_look(page, lang)
    notice = page.locator("article .cch-refused[role=alert]")
    expect(notice).to_contain_text(message)
    expect(notice).to_contain_text(i18n.catalogue(lang).gettext(BACK_KEEPS))
    assert page.title().startswith(i18n.catalogue(lang).gettext(REFUSED_TITLE))


def test_without_javascript_a_file_too_large_is_answered_on_the_forms_page(open_form, origin, forms_app):
    page = open_form("volunteer", "fr", javascript=False)
    fill_in(page, "volunteer", resume=document(samples.padded_pdf(6 * MEGABYTE)))
    send(page, "volunteer")
    page.wait_for_url("**/forms/volunteer?lang=fr")
    form = FORMS["volunteer"]
    message = i18n.catalogue("fr").gettext(
        failure_message(413, form), max_megabytes=form["resume"].max_megabytes, max_length=LONG_TEXT_MAX
    )
    expect_the_refusal_on_the_forms_page(page, "fr", message)
    page.go_back()  # as the page says: what was typed is there
    expect(page.locator("#volunteer-motivation")).to_have_value(typed_value(form["motivation"]))


@pytest.mark.parametrize("contact", ["phone", "video"])
def test_a_call_needs_a_phone_number_before_anything_is_sent(open_form, origin, forms_app, contact):
    page = open_form("support", "en")
    posts = record_posts(page)
    fill_in(page, "support")
    page.locator("#support-contact").select_option(contact)
    page.locator("#support-phone").fill("")
    send(page, "support")
    message = i18n.catalogue("en").gettext(FORMS["support"]["phone"].error("required"))
    expect_field_error(page, "support", "phone", message)
    expect(page.locator("#support-summary")).to_be_focused()
    assert posts == []
    page.locator("#support-contact").select_option("email")  # no call: no number needed
    send(page, "support")
    page.wait_for_url(thanks_url(origin, "support", "en"))


def test_other_language_asks_which_only_when_chosen(open_form, origin, forms_app, smtp_server):
    page = open_form("support", "fr")
    which = page.locator("#support-other_language")
    fill_in(page, "support")
    expect(which).to_be_hidden()
    page.locator("#support-preferred_language").select_option("other")
    expect(which).to_be_visible()
    expect(page.get_by_label(i18n.catalogue("fr").gettext(FORMS["support"]["other_language"].label))).to_be_visible()
    which.fill("Wolof")
    send(page, "support")
    page.wait_for_url(thanks_url(origin, "support", "fr"))
    [mail] = association_mails(forms_app, smtp_server, "support")
    assert "Wolof" in mail.get_body(("plain",)).get_content()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_missing_and_malformed_input_is_explained_before_anything_is_sent(open_form, lang):
    page = open_form("volunteer", lang)
    posts = record_posts(page)
    page.locator("#volunteer-email").fill("not an address")
    send(page, "volunteer")
    expect(page.locator("#volunteer-summary")).to_be_focused()
    catalogue, form = i18n.catalogue(lang), FORMS["volunteer"]
    problems = {
        "name": "required",
        "email": "email",
        "motivation": "required",
        "resume": "required",
        "consent": "required",
    }
    for field, code in problems.items():
        expect_field_error(page, "volunteer", field, catalogue.gettext(form[field].error(code)))
    expect(page.locator("#volunteer-summary li a")).to_have_count(len(problems))
    assert posts == []
    assert axe_violations(page) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_services_refusals_appear_next_to_their_fields_and_in_the_summary(open_form, lang):
    page = open_form("volunteer", lang)
    fill_in(page, "volunteer", resume=document(b"Only text, not a PDF at all."))
    page.locator("#volunteer-email").fill("amina@localhost")  # the browser accepts it, the service does not
    send(page, "volunteer")
    summary = page.locator("#volunteer-summary")
    expect(summary).to_be_focused()
    catalogue, form = i18n.catalogue(lang), FORMS["volunteer"]
    expect_field_error(page, "volunteer", "email", catalogue.gettext(form["email"].error("email")))
    expect_field_error(page, "volunteer", "resume", catalogue.gettext(form["resume"].error("file_type")))
    assert axe_violations(page) == []
    summary.locator("a").first.click()
    expect(page.locator("#volunteer-email")).to_be_focused()


@pytest.mark.parametrize("name, lang", [("volunteer", "fr"), ("support", "en")])
def test_keyboard_alone_reaches_every_control_in_order_and_sends(open_form, origin, forms_app, name, lang):
    page = open_form(name, lang)
    # Listening before any key is pressed turns file-chooser interception on in time.
    page.on("filechooser", lambda chooser: chooser.set_files(document(RESUME)))
    fields = asked(name)
    page.locator(f"#{name}-{fields[0].name}").focus()
    for field in fields:
        assert focused(page) == field.name
        operate(page, field)
        page.keyboard.press("Tab")
    assert focused(page) == "a"  # the privacy policy, right after the consent it explains
    page.keyboard.press("Tab")
    assert focused(page) == "submit"
    page.keyboard.press("Enter")
    page.wait_for_url(thanks_url(origin, name, lang))


def focused(page) -> str:
    """The focused control's name, else its type or tag: what Tab reached."""
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return e.name || e.getAttribute('type') || e.tagName.toLowerCase(); }"
    )


def operate(page, field) -> None:
    """Fill in the focused control with the keyboard only."""
    if field.kind == FILE:
        page.keyboard.press("Space")  # opens the chooser; the test's listener picks the file
        page.wait_for_function("() => document.activeElement.files.length === 1")
    elif field.kind == CHECKBOX:
        page.keyboard.press("Space")
    elif field.kind == SELECT:
        page.keyboard.press("ArrowDown")
    else:
        page.keyboard.type(typed_value(field))


@pytest.mark.parametrize(
    "resume, code",
    [
        (document(samples.padded_pdf(5 * MEGABYTE + 1)), "file_too_big"),
        (document(b"Notes", name="notes.txt", mime="text/plain"), "file_type"),
    ],
    ids=["too-big", "wrong-type"],
)
def test_a_file_the_service_would_refuse_is_refused_before_upload(open_form, resume, code):
    page = open_form("volunteer", "fr")
    posts = record_posts(page)
    fill_in(page, "volunteer", resume=resume)
    field = FORMS["volunteer"]["resume"]
    message = i18n.catalogue("fr").gettext(field.error(code), max_megabytes=field.max_megabytes)
    expect_field_error(page, "volunteer", "resume", message)  # said as soon as the file is chosen
    send(page, "volunteer")
    expect(page.locator("#volunteer-summary")).to_be_focused()
    expect(page.locator("#volunteer-summary")).to_contain_text(message)
    assert posts == []


def test_a_lost_connection_is_said_and_keeps_what_was_typed(open_form, origin, forms_app):
    page = open_form("volunteer", "en")
    page.route("**/forms/**", lambda route: route.abort("internetdisconnected"))
    fill_in(page, "volunteer")
    send(page, "volunteer")
    expect(page.locator("#volunteer-summary")).to_be_focused()
    expect(page.locator("#volunteer-summary")).to_contain_text(NETWORK_FAILURE)
    for field in asked("volunteer"):
        if field.kind not in (FILE, CHECKBOX):
            expect(page.locator(f"#volunteer-{field.name}")).to_have_value(typed_value(field))
    expect(page.locator("#volunteer-consent")).to_be_checked()
    assert page.locator("#volunteer-resume").evaluate("input => input.files.length") == 1
    page.unroute("**/forms/**")
    send(page, "volunteer")  # the same, once the connection is back
    page.wait_for_url(thanks_url(origin, "volunteer", "en"))


def test_a_refused_request_shows_the_services_own_message(open_form, origin, make_app):
    # The service trusts another site only: it refuses with 403 and says why.
    origin.forms = make_app(SITE_URL=origin.name, ALLOWED_ORIGINS=["https://elsewhere.example"])
    page = open_form("support", "fr")
    fill_in(page, "support")
    send(page, "support")
    summary = page.locator("#support-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text(i18n.catalogue("fr").gettext(FAILURES[403]))
    expect(summary.locator(".cch-form__summary-intro")).to_be_hidden()  # no field to correct
    expect(page.locator("#support-email")).to_have_value(typed_value(FORMS["support"]["email"]))
    expect(page.locator("#support-form [type=submit]")).to_be_enabled()


def test_a_second_submission_while_sending_is_impossible(open_form, origin, forms_app, smtp_server):
    page = open_form("support", "en")
    posts = record_posts(page)
    fill_in(page, "support")
    state = page.locator("#support-form").evaluate("""form => {
        form.requestSubmit();
        const state = [form.getAttribute("aria-busy"), form.querySelector("[type=submit]").disabled];
        form.requestSubmit();
        return state;
    }""")
    assert state == ["true", True]
    page.wait_for_url(thanks_url(origin, "support", "en"))
    assert len(posts) == 1
    assert len(association_mails(forms_app, smtp_server, "support")) == 1


def test_an_upload_shows_its_progress(open_form, origin, forms_app):
    page = open_form("volunteer", "en")
    # A slow uplink, as on a weak mobile connection: the upload takes a few seconds.
    page.context.new_cdp_session(page).send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 50, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )
    fill_in(page, "volunteer", resume=document(samples.padded_pdf(MEGABYTE)))
    send(page, "volunteer")
    expect(page.get_by_label(i18n.catalogue("en").gettext("Sending…"))).to_be_visible()
    page.wait_for_function("() => document.getElementById('volunteer-progress').value > 0")
    page.wait_for_url(thanks_url(origin, "volunteer", "en"))


def test_a_draft_survives_a_reload_and_is_gone_once_the_request_is_accepted(open_form, origin, forms_app):
    """900 characters of a painful message outlive a reload (this tab's sessionStorage only: never
    localStorage, never a cookie); once the service has accepted the request, the page opens empty."""
    page = open_form("support", "fr")
    words = ("Je n’arrive plus à dormir depuis mon retour de mission. " * 20)[:900]
    page.locator("#support-message").press_sequentially(words[:20])
    page.locator("#support-message").fill(words)
    page.locator("#support-email").fill("amina.haddad@example.org")
    expect(page.locator("#support-draft-note")).to_have_text(i18n.catalogue("fr").gettext(DRAFT_KEPT))
    page.reload()
    expect(page.locator("#support-message")).to_have_value(words)
    expect(page.locator("#support-email")).to_have_value("amina.haddad@example.org")
    kept_elsewhere = page.evaluate("JSON.stringify(localStorage) + document.cookie")
    assert words[:40] not in kept_elsewhere and "amina" not in kept_elsewhere

    fill_in(page, "support")
    send(page, "support")
    page.wait_for_url(thanks_url(origin, "support", "fr"))
    page.goto(origin.url + site_path("fr", FORMS["support"].page))
    expect(page.locator("#support-message")).to_have_value("")
    expect(page.locator("#support-email")).to_have_value("")
    assert page.evaluate("sessionStorage.length") == 0


def test_an_accepted_request_is_confirmed_in_place_even_if_the_thank_you_page_cannot_load(
    open_form, origin, forms_app, smtp_server
):
    page = open_form("support", "en")
    page.route(thanks_url(origin, "support", "en"), lambda route: route.abort("internetdisconnected"))
    fill_in(page, "support")
    send(page, "support")
    confirmation = page.locator("#support-accepted")
    expect(confirmation).to_be_focused()
    assert confirmation.get_attribute("role") == "status"
    # The thank-you page's own text, in the page's language.
    thanks = (origin.dir / site_path("en", FORMS["support"].thanks_page)).read_text(encoding="utf-8")
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", thanks, re.S).group(1)
    expect(confirmation.locator("h3").first).to_have_text(heading)
    expect(confirmation.locator(".crisis a[href='tel:143']")).to_be_visible()
    expect(page.locator("#support-form")).to_be_hidden()
    page.wait_for_timeout(2500)  # longer than the script waits before it would open the thank-you page
    assert page.url == origin.url + site_path("en", FORMS["support"].page)  # not the browser's error page
    expect(confirmation).to_be_visible()
    assert len(association_mails(forms_app, smtp_server, "support")) == 1
    assert axe_violations(page) == []


def test_an_application_sent_while_every_upload_slot_is_taken_goes_again_by_itself(
    open_form, origin, forms_app, smtp_server
):
    """Every upload slot taken (forms_service/upload_slots.py): the service answers 503 with
    Retry-After, and the script sends the form again after it, the person doing nothing."""
    slots = extensions.upload_slots(forms_app)
    taken = [slots.take() for _ in slots.paths]
    page = open_form("volunteer", "en")
    posts = record_posts(page)
    fill_in(page, "volunteer")
    with page.expect_response(lambda response: "/forms/volunteer" in response.url) as first:
        send(page, "volunteer")
    for descriptor in taken:
        os.close(descriptor)
    assert first.value.status == 503
    expect(page.get_by_label(i18n.catalogue("en").gettext("Sending…"))).to_be_visible()
    page.wait_for_url(thanks_url(origin, "volunteer", "en"), timeout=3_000 * BUSY_RETRY_SECONDS)
    assert len(posts) == 2
    assert len(association_mails(forms_app, smtp_server, "volunteer")) == 1

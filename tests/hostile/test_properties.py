"""Property-based hostile input at both endpoints: whatever arrives, a 4xx or a success, never a 500."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from harness.settings import JSON, SITE, support_form, volunteer_form
from tests.hostile import strategies as hs
from tests.hostile.expect import LANGUAGES, check_response

FORM_PATHS = ("/forms/volunteer", "/forms/support")


def _post(client, path: str, body: hs.Body, headers: dict):
    """POST raw bytes with exactly the given Content-Type (or none)."""
    if body.content_type is not None:
        headers = {**headers, "Content-Type": body.content_type}
    return client.post(path, data=body.data, headers=headers)


@hs.BOUNDED
@given(path=st.sampled_from(FORM_PATHS), body=hs.bodies, headers=hs.headers())
def test_any_body_with_any_headers_gets_a_clear_answer(client, path, body, headers):
    check_response(_post(client, path, body, headers))


@hs.BOUNDED
@given(
    path=st.sampled_from(FORM_PATHS),
    body=st.one_of(hs.urlencoded(), hs.multipart()),
    language=st.sampled_from(LANGUAGES),
    data=st.data(),
)
def test_refusals_are_in_the_language_asked_for(client, path, body, language, data):
    headers = {
        **SITE,
        "Accept": data.draw(st.sampled_from(["application/json", "text/html"])),
        "Accept-Language": data.draw(hs.language_tags(language)),
    }
    check_response(_post(client, path, body, headers), _asked_language(body, language))


def _asked_language(body: hs.Body, accept_language: str) -> str:
    """Issue 3's rule: the body's `lang` when it names a supported language (tags ignore case),
    else the Accept-Language match. Generated bodies can spell `lang=FR` too."""
    environ = EnvironBuilder(method="POST", data=body.data, content_type=body.content_type).get_environ()
    return _chosen(parse_form_data(environ)[1].get("lang"), accept_language)


def _chosen(requested: object, accept_language: str) -> str:
    """`requested` when it is a supported language tag in any case, else the Accept-Language match."""
    tag = requested.strip().lower() if isinstance(requested, str) else ""
    return tag if tag in LANGUAGES else accept_language


def _valid_pairs(path: str) -> list[tuple[str, object]]:
    """The fields of a valid post to `path`, the resumé as a file tuple."""
    form = volunteer_form() if path.endswith("volunteer") else support_form()
    return list(form.items())


@hs.BOUNDED
@given(
    path=st.sampled_from(FORM_PATHS),
    extra=hs.pairs,
    drop=st.sets(st.sampled_from(hs.FIELD_NAMES), max_size=3),
    resume=hs.file_bytes,
    filename=st.text(max_size=60),
    language=st.sampled_from(LANGUAGES),
)
def test_near_valid_posts_with_repeats_unknown_fields_and_odd_files(
    client, path, extra, drop, resume, filename, language
):
    """Start from a valid form so that the deeper paths (upload checks, relay) are reached too."""
    pairs = [(name, value) for name, value in _valid_pairs(path) if name not in drop and name != "lang"]
    if path.endswith("volunteer") and "resume" not in drop:
        pairs = [pair for pair in pairs if pair[0] != "resume"] + [("resume", (io.BytesIO(resume), filename))]
    response = client.post(
        path, data=MultiDict([*pairs, *extra]), headers={**SITE, **JSON, "Accept-Language": language}
    )
    check_response(response, _chosen(next((value for name, value in extra if name == "lang"), None), language))


@hs.BOUNDED
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "POST"]),
    path=st.one_of(
        st.sampled_from(
            [
                *FORM_PATHS,
                "/forms/healthz",
                "/forms/",
                "/forms",
                "/forms/volunteer/",
                "/forms/%ff",
                "/forms/..%2f..%2fetc",
            ]
        ),
        st.text(max_size=30).map(lambda text: "/forms/" + text.replace("?", "").replace("#", "")),
    ),
    headers=hs.headers(),
)
def test_every_method_and_path_gets_a_clear_answer(client, method, path, headers):
    check_response(client.open(path, method=method, headers=headers))


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/forms/volunteer"), ("PUT", "/forms/support"), ("POST", "/forms/healthz")]
)
def test_a_405_for_a_json_client_is_a_json_405(client, method, path):
    response = client.open(path, method=method, headers={**JSON, "Accept-Language": "en"})
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"] or "GET" in response.headers["Allow"]
    check_response(response, "en")


@settings(hs.BOUNDED, max_examples=25)  # a new app per example: fewer, still varied
@given(bodies=st.lists(hs.bodies, min_size=4, max_size=4), language=st.sampled_from(LANGUAGES))
def test_the_rate_limit_answers_429_in_language_whatever_the_body(make_app, bodies, language):
    """The one test with the limiter on: garbage spends the refusal budget, then a clear 429."""
    # Memory counters: every example's app starts afresh (the data folder is shared by the examples).
    client = make_app(
        RATELIMIT_ENABLED=True, RATELIMIT_REFUSALS="3 per minute", RATELIMIT_STORAGE_URI="memory://"
    ).test_client()
    headers = {**SITE, **JSON, "Accept-Language": language}
    answers = [_post(client, "/forms/support", body, headers) for body in bodies]
    assert [answer.status_code == 429 for answer in answers] == [False, False, False, True]
    check_response(answers[-1], language)

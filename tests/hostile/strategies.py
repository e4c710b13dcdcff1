"""Hypothesis strategies for hostile requests: bodies, headers, files, encodings.

Bodies are built as raw bytes (not through a client library) so that they can
be malformed in ways no well-behaved client would produce: wrong boundaries,
truncation, charsets that disagree with the bytes, repeated or unknown fields.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from forms_service.fields import FORMS
from harness import samples
from tests.hostile import raw

BOUNDED = settings(
    max_examples=250,
    deadline=None,  # the first request of a run compiles templates; timing is not the point here
    derandomize=True,  # same examples on every run: CI stays deterministic
    database=None,
    # One app and client serve all examples: each request is independent of the others.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIELD_NAMES = sorted({item.name for form in FORMS.values() for item in form.fields})
CHARSETS = ("utf-8", "latin-1", "utf-16", "shift_jis", "koi8-r", "cp1252")
# Header values travel as latin-1 in HTTP/1.1: printable ASCII and latin-1 supplements.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)

FILE_CONTENTS = (
    samples.pdf_bytes(),
    samples.docx_bytes(),
    samples.odt_bytes(),
    samples.docm_bytes(),
    samples.odt_with_macros(),
    samples.encrypted_docx(),
    samples.plain_zip(),
    samples.exe_bytes(),
    samples.many_entries_docx(count=1200),
    b"",
)


@dataclass(frozen=True)
class Body:
    """A request body and the Content-Type header announcing it (None: no header)."""

    content_type: str | None
    data: bytes


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """The bytes as they are, cut short, or with a few bytes overwritten (damaged deflate data included)."""
    return st.one_of(
        st.just(data),
        st.integers(0, len(data)).map(lambda end: data[:end]),
        st.lists(st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(0, 255)), max_size=4).map(
            lambda edits: _overwrite(data, edits)
        ),
    )


def _overwrite(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        if position < len(out):
            out[position] = value
    return bytes(out)


file_bytes = st.one_of(st.sampled_from(FILE_CONTENTS).flatmap(mutated), st.binary(max_size=2048))
field_names = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=20))
# Every script, combining marks, controls, bidi overrides: Hypothesis draws from all of Unicode.
field_values = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["", " ", "yes", "on", "en", "fr", "between_missions", "a@example.org", "x" * 5001]),
    st.text(max_size=20).map(lambda text: f"{text}@example.org"),
)
pairs = st.lists(st.tuples(field_names, field_values), max_size=14)


@st.composite
def urlencoded(draw) -> Body:
    """Form fields in some charset, announced with the same, another, or no charset."""
    charset = draw(st.sampled_from(CHARSETS))
    data = urllib.parse.urlencode(draw(pairs), encoding=charset, errors="replace").encode("ascii")
    data = draw(st.one_of(st.just(data), st.binary(max_size=300), mutated(data)))
    declared = draw(st.sampled_from(["", f"; charset={charset}", "; charset=utf-8", "; charset=bogus"]))
    return Body(f"application/x-www-form-urlencoded{declared}", data)


@st.composite
def multipart_part(draw) -> tuple[bytes, bytes]:
    """One part: a text field in some charset, or a file with a hostile name and content."""
    name = draw(field_names).replace('"', "%22")
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if not draw(st.booleans()):
        return disposition.encode(errors="surrogateescape"), draw(field_values).encode(
            draw(st.sampled_from(CHARSETS)), errors="replace"
        )
    filename = draw(st.text(max_size=40)).replace('"', "%22")
    part_type = draw(st.sampled_from(["application/pdf", "application/octet-stream", "text/html", "", "x/y"]))
    head = f'{disposition}; filename="{filename}"\r\nContent-Type: {part_type}'
    return head.encode(errors="surrogateescape"), draw(file_bytes)


@st.composite
def multipart(draw) -> Body:
    """A multipart body, sometimes with a boundary that disagrees with the header, or cut short."""
    boundary = draw(st.text("abcdefXYZ0123456789-_'()+,./:=?", min_size=1, max_size=70))
    _, data = raw.multipart(draw(st.lists(multipart_part(), max_size=12)), boundary)
    data = draw(st.one_of(st.just(data), mutated(data)))
    announced = draw(
        st.sampled_from(
            [
                f"; boundary={boundary}",
                f'; boundary="{boundary}"',
                "",
                "; boundary=other",
                f"; charset=utf-8; boundary={boundary}",
            ]
        )
    )
    media = draw(st.sampled_from(["multipart/form-data", "MULTIPART/FORM-DATA", "multipart/mixed"]))
    return Body(media + announced, data)


other_bodies = st.builds(
    Body,
    st.one_of(st.none(), st.sampled_from(["application/json", "text/plain", "application/xml", ""]), header_text),
    st.one_of(st.binary(max_size=500), st.just(b'{"email": "a@example.org", "consent": true}')),
)
bodies = st.one_of(urlencoded(), multipart(), other_bodies)

origins = st.one_of(st.none(), st.sampled_from(["https://site.test", "https://evil.example", "null", ""]), header_text)
referers = st.one_of(
    st.none(), st.sampled_from(["https://site.test/en/volunteer.html", "https://evil.example/"]), header_text
)
accepts = st.one_of(
    st.none(),
    st.sampled_from(
        ["application/json", "text/html;q=0, application/json", "text/html", "*/*", "application/json;q=0.1, text/html"]
    ),
    header_text,
)
accept_languages = st.one_of(
    st.none(), st.sampled_from(["fr", "en", "en-GB,en;q=0.9", "de-CH", "*", "zz;q=x"]), header_text
)


@st.composite
def headers(draw) -> dict[str, str]:
    """Origin, Referer, Accept and Accept-Language, each absent, ordinary or garbage."""
    drawn = {
        "Origin": draw(origins),
        "Referer": draw(referers),
        "Accept": draw(accepts),
        "Accept-Language": draw(accept_languages),
    }
    return {name: value for name, value in drawn.items() if value is not None}


def language_tags(language: str) -> st.SearchStrategy[str]:
    """Accept-Language headers whose best supported match is `language`."""
    return st.sampled_from(
        [language, f"{language}-CH", f"{language};q=0.8, de;q=0.5", f"xx, {language}-XX;q=0.9", f"{language.upper()}"]
    )

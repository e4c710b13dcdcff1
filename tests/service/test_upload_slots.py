"""Uploads take one of the host's upload slots (forms_service/upload_slots.py): with every slot
taken, a volunteer application is answered at once, 503 with Retry-After in the submitter's
language, while a request for help still gets in; a slot comes back on every path, and when
its holder is killed. The same under gunicorn and nginx, under load: tests/deploy/test_floods.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from forms_service import extensions, i18n, views
from forms_service.upload_slots import UploadSlots
from harness.settings import JSON, SITE, support_form, volunteer_form
from tests.service.helpers import post


def all_slots(app) -> list[int]:
    """Take every slot of `app`'s host, as uploads in other workers would: their descriptors."""
    slots = extensions.upload_slots(app)
    taken = [slots.take() for _ in slots.paths]
    assert None not in taken and slots.take() is None
    return taken


def give_back(taken: list[int]) -> None:
    for descriptor in taken:
        os.close(descriptor)


def test_a_slot_is_a_lock_on_a_file_in_the_data_folder(tmp_path):
    slots = UploadSlots(tmp_path, 2)
    first, second = slots.take(), slots.take()
    assert None not in (first, second) and slots.take() is None
    give_back([first])
    third = slots.take()
    assert third is not None and slots.take() is None
    give_back([second, third])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["upload-slot-0.lock", "upload-slot-1.lock"]
    assert all(path.stat().st_mode & 0o777 == 0o600 and path.stat().st_size == 0 for path in tmp_path.iterdir())


def test_a_killed_holder_gives_its_slot_back(tmp_path):
    """A worker killed mid-upload (SIGKILL, gunicorn's timeout) leaves nothing held: the kernel drops its lock."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from forms_service.upload_slots import UploadSlots
                assert UploadSlots({str(tmp_path)!r}, 1).take() is not None
                print("taken", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "taken\n"
        assert UploadSlots(tmp_path, 1).take() is None
    finally:
        holder.kill()
        holder.wait()
    assert UploadSlots(tmp_path, 1).take() is not None


@pytest.mark.parametrize("language", ["fr", "en"])
def test_with_every_slot_taken_an_application_is_answered_busy_at_once(app, smtp_server, language):
    taken = all_slots(app)
    try:
        client = app.test_client()
        address = f"/forms/volunteer?lang={language}"  # as the site's form posts: the body is left unread
        answer = client.post(address, data=volunteer_form(), headers={**SITE, **JSON})
        page = client.post(address, data=volunteer_form(), headers=SITE)
        helped = post(client, "support", support_form(), JSON)
    finally:
        give_back(taken)
    busy = i18n.catalogue(language).gettext(views.BUSY)
    assert (answer.status_code, answer.headers["Retry-After"], answer.get_json()) == (
        503,
        str(views.BUSY_RETRY_SECONDS),
        {"ok": False, "error": busy},
    )
    assert page.status_code == 503 and busy in page.get_data(as_text=True)
    assert helped.status_code == 202
    assert [mail.rcpt_tos for mail in smtp_server.messages] == [
        ("support@cch.example.org",),
        ("aidworker@example.org",),
    ]
    assert post(app.test_client(), "volunteer", volunteer_form(), JSON).status_code == 202


def test_a_slot_comes_back_when_the_work_fails(make_app, smtp_server, monkeypatch):
    app = make_app(PROPAGATE_EXCEPTIONS=False, UPLOAD_SLOTS=1)
    monkeypatch.setattr(views, "validate", lambda *args: 1 / 0)
    assert post(app.test_client(), "volunteer", volunteer_form(), JSON).status_code == 500
    give_back(all_slots(app))

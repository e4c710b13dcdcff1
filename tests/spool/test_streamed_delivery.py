"""Delivery reads a spooled email a piece at a time as DATA sends it (Sealer.opening), against a real
SMTP server: never held whole, never sent altered, never from a row rewritten or deleted meanwhile."""

from __future__ import annotations

import io
import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import replace
from functools import partial

import pytest
from cryptography.fernet import Fernet

from forms_service import mime
from forms_service.delivery import Deliverer
from forms_service.outgoing import OutgoingMail
from forms_service.relay import Relay
from forms_service.sealing import Sealer, TokenChanged
from forms_service.spool import RetryPolicy, Spool
from tests.spool.conftest import outgoing

MEGABYTE = 1024 * 1024
SLOW_RETRY = RetryPolicy(base_seconds=60, max_seconds=60, max_age_seconds=3600)  # retried only when made due


def application(size: int, marker: str = "application") -> tuple[OutgoingMail, bytes]:
    """An email as composed for a volunteer application with a `size`-byte resumé, and its bytes."""
    resume = mime.attachment(os.urandom(size), "application/pdf", "cv.pdf")
    message = mime.message([("Subject", marker)], mime.multipart("mixed", [mime.text("Bonjour", "plain"), resume]))
    mail = OutgoingMail(f"<{marker}@forms.test>", "forms@association.test", ("team@example.org",), message)
    return mail, bytes(message)


def deliverer(spool: Spool, open_session) -> Deliverer:
    return Deliverer(spool, open_session, lease_seconds=10, poll_seconds=60)


class Interrupting:
    """A relay session that runs `action` once DATA has sent the first piece of a message, as another
    process may at that moment: the operator's `rotate-key`, a worker whose lease overlapped ours."""

    def __init__(self, app, action):
        self.relay, self.action = Relay(app), action

    def __enter__(self) -> Interrupting:
        return self

    def __exit__(self, *exc_info) -> None:
        self.relay.close()

    def send(self, mail: OutgoingMail) -> None:
        self.relay.send(replace(mail, data=AfterFirstPiece(mail.data, self.action)))


class AfterFirstPiece:
    """Pieces of `data`, with `action` run between the first and the second."""

    def __init__(self, data, action):
        self.data, self.action = data, action

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        pieces = iter(self.data)
        yield next(pieces)
        self.action()
        yield from pieces


def schedule(path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT id, state, attempts, last_error FROM schedule ORDER BY id").fetchall()


def test_a_5_mb_application_arrives_as_composed(app, spool, smtp_server):
    mail, composed = application(5 * MEGABYTE)
    spool.accept("big", [mail])
    assert deliverer(spool, partial(Relay, app)).deliver_all() == 1
    (received,) = smtp_server.messages
    assert received.data == composed and received.rcpt_tos == mail.recipients
    assert spool.stats().queued == 0


def test_lines_starting_with_a_dot_across_pieces_arrive_as_spooled(app, spool, smtp_server):
    """Every line starts with a dot, lines of every length: many straddle the pieces the row is read in."""
    body = b"".join(b"." + b"x" * (number % 97) + b"\r\n" for number in range(8000)) + b".\r\n..\r\n.\r\n"
    spool.accept("dots", [outgoing("dots", body=body)])
    assert deliverer(spool, partial(Relay, app)).deliver_all() == 1
    assert [received.data for received in smtp_server.messages] == [outgoing("dots", body=body).data]


def test_a_row_rewritten_while_sent_is_not_sent_altered_and_is_retried(app, spool_path, smtp_server):
    """rotate-key re-seals the row between the first pass and the rest of DATA: what DATA reads then
    does not match what was authenticated, so the end marker is never sent; the next try sends it."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    spool = Spool(spool_path, Sealer([old, new]), SLOW_RETRY)
    mail, composed = application(300_000)
    spool.accept("rewritten", [mail])
    rotate_key = partial(Spool(spool_path, Sealer([new, old])).reseal)
    assert deliverer(spool, partial(Interrupting, app, rotate_key)).deliver_all() == 1
    assert smtp_server.messages == []
    [(entry_id, state, attempts, error)] = schedule(spool_path)
    assert (state, attempts, error) == ("queued", 1, "TokenChanged")
    assert Spool(spool_path, Sealer([new])).unopened() == (0, 1)  # it was re-sealed indeed
    spool.make_due()
    assert deliverer(spool, partial(Relay, app)).deliver_all() == 1
    assert [received.data for received in smtp_server.messages] == [composed]


class ReadsThen:
    """A token (sealing.Readable) that runs `action` at its `count`-th read, once."""

    def __init__(self, token, count: int, action):
        self.token, self.count, self.action = token, count, action

    def __len__(self) -> int:
        return len(self.token)

    def seek(self, offset: int, origin: int = 0) -> None:
        self.token.seek(offset, origin)

    def read(self, length: int = -1) -> bytes:
        self.count -= 1
        if not self.count:
            self.action()
        return self.token.read(length)


class RotatedWhileChecked(Sealer):
    """A Sealer whose first pass over a row (the signature check) is interrupted by `rotate`, once."""

    def __init__(self, keys, rotate):
        super().__init__(keys)
        self.rotate = rotate

    def opening(self, token, separator):
        action, self.rotate = self.rotate, lambda: None
        return super().opening(ReadsThen(token, 5, action), separator)  # inside the HMAC's loop


def test_a_row_rewritten_while_its_signature_is_checked_is_not_taken_for_forged(app, spool_path, smtp_server):
    """The check reads one snapshot of the row: the old token whole, which opens; the rest of DATA then
    reads the new one, so the message is retried, and delivered as composed."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    mail, composed = application(300_000)
    Spool(spool_path, Sealer([old, new])).accept("rewritten", [mail])
    spool = Spool(spool_path, RotatedWhileChecked([old, new], Spool(spool_path, Sealer([new, old])).reseal), SLOW_RETRY)
    assert deliverer(spool, partial(Relay, app)).deliver_all() == 1
    assert spool.list_dead() == [] and smtp_server.messages == []
    assert [row[1:] for row in schedule(spool_path)] == [("queued", 1, "TokenChanged")]
    spool.make_due()
    assert deliverer(spool, partial(Relay, app)).deliver_all() == 1
    assert [received.data for received in smtp_server.messages] == [composed]


def test_a_row_deleted_while_sent_is_not_recorded_as_failed(app, spool, smtp_server, caplog):
    """A worker whose lease overlapped ours delivered it meanwhile: our copy stays unfinished, and
    nothing is retried or counted against it."""
    mail, _ = application(300_000)
    spool.accept("gone", [mail])
    [(entry_id, *_)] = schedule(spool.path)
    elsewhere = partial(Spool(spool.path, spool.sealer).delivered, entry_id)
    with caplog.at_level(logging.INFO, logger="forms_service.delivery"):
        assert deliverer(spool, partial(Interrupting, app, elsewhere)).deliver_all() == 1
    assert smtp_server.messages == []
    assert "was gone while sent" in caplog.text
    assert not [
        record
        for record in caplog.records
        if record.name.startswith("forms_service") and record.levelno >= logging.WARNING
    ]


def test_a_tampered_row_goes_dead_and_nothing_is_sent(app, spool, smtp_server):
    mail, _ = application(300_000)
    spool.accept("tampered", [mail])
    [(entry_id, *_)] = schedule(spool.path)
    with closing(sqlite3.connect(spool.path)) as db:
        with db.blobopen("outgoing", "sealed", entry_id) as blob:
            blob.seek(len(blob) // 2)
            character = blob.read(1)
            blob.seek(len(blob) // 2)
            blob.write(b"B" if character == b"A" else b"A")  # another base64 character: one ciphertext byte
        db.commit()
    assert deliverer(spool, partial(Relay, app)).deliver_all() == 0
    assert smtp_server.messages == []
    assert [entry.last_error for entry in spool.list_dead()] == ["InvalidToken"]


class Token(io.BytesIO):
    """A token in memory, read as the spool's rows are (sealing.Readable)."""

    def __len__(self) -> int:
        return len(self.getbuffer())


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 48 * 1024 - 30, 48 * 1024, 300_001])
def test_an_opening_has_the_exact_length_and_bytes_of_the_body(spool_key, size):
    body = os.urandom(size)
    opening = Sealer([spool_key]).opening(Token(Fernet(spool_key).encrypt(b'{"head": 1}\n' + body)), b"\n")
    assert opening.head == b'{"head": 1}\n'
    assert len(opening) == size and b"".join(opening) == body == b"".join(opening)  # each pass reads anew


def test_an_opening_whose_token_changed_ends_in_an_error_not_its_last_piece(spool_key):
    plain = b"head\n" + os.urandom(200_000)
    token = Token(Fernet(spool_key).encrypt(plain))
    opening = Sealer([spool_key]).opening(token, b"\n")
    token.seek(0)
    token.write(Fernet(spool_key).encrypt(plain))  # the same text sealed again: another IV, another HMAC
    pieces = []
    with pytest.raises(TokenChanged):
        pieces.extend(opening)
    assert len(b"".join(pieces)) < len(plain) - 5

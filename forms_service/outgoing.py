"""The unit of work between composing, spooling and relaying: one email ready for SMTP."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .mime import Message

# What a spooled email is, for its handling when refused (delivery.py) and for the operator:
# the association's copy (urgent recipients included) must never be lost; an acknowledgement
# holds nothing the association needs.
ASSOCIATION = "association"
ACKNOWLEDGEMENT = "acknowledgement"


@dataclass(frozen=True)
class OutgoingMail:
    """An email exactly as it will be handed to the SMTP server.

    Composition happens once, at acceptance, so that with OpenPGP keys the
    spool only ever holds ciphertext the server itself cannot read. `kind`
    is bookkeeping the spool keeps beside the sealed blob, not inside it.
    """

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    # mime.Message when composed (an attachment's base64 made only while the spool seals it), the
    # bytearray the spool opens when relayed: a resumé's size, never copied into bytes.
    data: bytes | bytearray | Message
    kind: str = ASSOCIATION

    def parts(self) -> tuple[bytes, bytes | bytearray | Message]:
        """What the spool seals, in two parts not joined (the spool seals them as one, piece by piece):
        a JSON envelope line, then the raw message. Each has its exact len()."""
        head = {"message_id": self.message_id, "sender": self.sender, "recipients": list(self.recipients)}
        return json.dumps(head, separators=(",", ":")).encode() + b"\n", self.data

    def dumps(self) -> bytes:
        """Serialise for the spool, joined: what `loads` reads back."""
        head, data = self.parts()
        return b"".join([head, *data] if isinstance(data, Message) else [head, data])

    @classmethod
    def loads(cls, raw: bytes | bytearray, kind: str = ASSOCIATION) -> OutgoingMail:
        """The email `dumps` wrote. A bytearray is taken over, not copied: its envelope line is cut off
        in place (a resumé's size is never copied again on the way to SMTP)."""
        end = raw.index(b"\n")
        fields = json.loads(raw[:end])
        if isinstance(raw, bytearray):
            del raw[:end + 1]  # CPython moves the start of the buffer, not the bytes
            data = raw
        else:
            data = raw[end + 1:]
        return cls(fields["message_id"], fields["sender"], tuple(fields["recipients"]), data, kind)

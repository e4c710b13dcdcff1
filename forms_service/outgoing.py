"""The unit of work between composing, spooling and relaying: one email ready for SMTP."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .mime import Message
from .sealing import Opening

# What a spooled email is, for its handling when refused (delivery.py) and for the operator:
# the association's copy (urgent recipients included) must never be lost; an acknowledgement
# holds nothing the association needs.
ASSOCIATION = "association"
ACKNOWLEDGEMENT = "acknowledgement"
ENVELOPE_END = b"\n"  # what ends the JSON envelope line before the message, in what the spool seals


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
    # spool row's Opening when relayed (decrypted a piece at a time as DATA sends it), the bytearray
    # `loads` takes over when a row is opened whole.
    data: bytes | bytearray | Message | Opening
    kind: str = ASSOCIATION

    def parts(self) -> tuple[bytes, bytes | bytearray | Message]:
        """What the spool seals, in two parts not joined (the spool seals them as one, piece by piece):
        a JSON envelope line, then the raw message. Each has its exact len()."""
        head = {"message_id": self.message_id, "sender": self.sender, "recipients": list(self.recipients)}
        return json.dumps(head, separators=(",", ":")).encode() + ENVELOPE_END, self.data

    def dumps(self) -> bytes:
        """Serialise for the spool, joined: what `loads` reads back."""
        head, data = self.parts()
        return b"".join([head, *data] if isinstance(data, Message) else [head, data])

    @classmethod
    def loads(cls, raw: bytes | bytearray, kind: str = ASSOCIATION) -> OutgoingMail:
        """The email `dumps` wrote. A bytearray is taken over, not copied: its envelope line is cut off
        in place (a resumé's size is never copied again on the way to SMTP)."""
        end = raw.index(ENVELOPE_END) + len(ENVELOPE_END)
        envelope = bytes(raw[:end])
        if isinstance(raw, bytearray):
            del raw[:end]  # CPython moves the start of the buffer, not the bytes
            return cls.enveloped(envelope, raw, kind)
        return cls.enveloped(envelope, raw[end:], kind)

    @classmethod
    def enveloped(cls, envelope: bytes, data: bytes | bytearray | Opening, kind: str = ASSOCIATION) -> OutgoingMail:
        """The email of an envelope line `dumps` wrote and the message that followed it."""
        fields = json.loads(envelope)
        return cls(fields["message_id"], fields["sender"], tuple(fields["recipients"]), data, kind)

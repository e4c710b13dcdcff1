"""The unit of work between composing, spooling and relaying: one email ready for SMTP."""

from __future__ import annotations

import json
from dataclasses import dataclass

# What a spooled email is, for its handling when refused (delivery.py) and for the operator:
# the association's copy (urgent recipients included) must never be lost; an acknowledgement
# holds nothing the association needs.
ASSOCIATION = "association"
ACKNOWLEDGEMENT = "acknowledgement"
ENVELOPE_END = b"\n"  # what ends the JSON envelope line before the message, in what the spool seals


@dataclass(frozen=True)
class OutgoingMail:
    """An email exactly as it will be handed to the SMTP server, composed once, at acceptance (with OpenPGP
    keys, the spool only ever holds ciphertext); `kind` is bookkeeping the spool keeps beside the sealed row."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes | memoryview  # the message as SMTP's DATA sends it
    kind: str = ASSOCIATION

    def dumps(self) -> bytes:
        """What the spool seals: a JSON envelope line, then the message."""
        head = {"message_id": self.message_id, "sender": self.sender, "recipients": list(self.recipients)}
        return b"".join([json.dumps(head, separators=(",", ":")).encode(), ENVELOPE_END, self.data])

    @classmethod
    def loads(cls, raw: bytes, kind: str = ASSOCIATION) -> OutgoingMail:
        """The email `dumps` wrote; its message is a view into `raw`, so a resumé is not copied again."""
        end = raw.index(ENVELOPE_END) + len(ENVELOPE_END)
        head = json.loads(raw[:end])
        return cls(head["message_id"], head["sender"], tuple(head["recipients"]), memoryview(raw)[end:], kind)

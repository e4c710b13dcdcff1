"""Hand-made HTTP: multipart bodies and requests no client library would send.

Libraries quote or refuse what hostile clients send on purpose (CR/LF in a
file name, a body larger than announced...), so these helpers write bytes.
"""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass

SEND_CHUNK = 64 * 1024


def multipart(parts: list[tuple[bytes, bytes]], boundary: str = "hostile-boundary") -> tuple[str, bytes]:
    """(Content-Type, body) from parts given as (raw header lines, content)."""
    mark = b"--" + boundary.encode()
    body = b"".join(mark + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n" for head, content in parts)
    return f"multipart/form-data; boundary={boundary}", body + mark + b"--\r\n"


def text_part(name: str, value: str) -> tuple[bytes, bytes]:
    """A plain form field as a multipart part."""
    return f'Content-Disposition: form-data; name="{name}"'.encode(), value.encode()


@dataclass(frozen=True)
class Answer:
    """A parsed HTTP response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 20.0) -> Answer:
    """Send a request and read the answer, stopping the upload as soon as the server answers.

    Browsers and curl do the same with an early answer (a 413 before the
    body is read); a reset instead of an answer fails the test.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head)
        sent = 0
        while sent < len(body):
            readable, writable, _ = select.select([connection], [connection], [], timeout)
            if readable:
                break
            if not writable:
                raise TimeoutError("server neither reads nor answers")
            sent += connection.send(body[sent : sent + SEND_CHUNK])
        return _read_answer(connection)


def _read_answer(connection: socket.socket) -> Answer:
    """Read until the server closes (every request here says Connection: close)."""
    raw = b""
    while chunk := connection.recv(SEND_CHUNK):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    """Request line and headers, with Connection: close, as raw bytes."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

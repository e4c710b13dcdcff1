"""Floods on loopback, for the tests and the benchmarks alike: many clients replaying prepared
requests for as long as it takes, while one person's requests are sent at a steady pace and timed.

asyncio with pre-built request bytes, one connection per request (gunicorn's
sync workers close after each answer anyway), so a flood of hundreds of
connections costs the machine little beside the servers it floods.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

BUSY = 503  # with Retry-After: every upload slot was taken (forms_service/upload_slots.py)
BUSY_RETRY_LIMIT = 60  # seconds: a longer Retry-After is not sent again (overrides/assets/javascripts/forms.js)
BUSY_PAUSE = 1.0  # what a test waits before sending again: the site's script waits Retry-After


def multipart_request(path: str, form: dict, headers: dict[str, str]) -> bytes:
    """A complete POST with a multipart body; file fields as (BytesIO, name, type) tuples, as the tests write them."""
    values = {key: FileStorage(*value) if isinstance(value, tuple) else value for key, value in form.items()}
    boundary, body = encode_multipart(values)
    head = {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return request_bytes("POST", path, head, body)


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """Request line, headers (with Content-Length and Connection: close) and body."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send one request, read the whole answer: its status (0 for a failed connection) and head."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
    except OSError:
        return 0, b""
    head = answer.split(b"\r\n\r\n", 1)[0]
    return (int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0), head


def send(port: int, request: bytes) -> int:
    """Send one prepared request from this thread: its status (0 for a failed connection)."""
    return asyncio.run(exchange(port, request))[0]


def is_busy(status: int, head: bytes) -> bool:
    """The service's answer when every upload slot is taken, from a raw answer's head."""
    found = re.search(rb"\r\nretry-after:\s*(\d+)", head, re.IGNORECASE)
    return retry_soon(status, found and int(found[1]))


def retry_soon(status: int, retry_after: int | None) -> bool:
    """A 503 asking to try again within a minute: the busy answer, which the site's script sends
    again (not nginx's own 503, which has no Retry-After, nor a full spool's, which says an hour)."""
    return status == BUSY and retry_after is not None and 0 < retry_after <= BUSY_RETRY_LIMIT


@dataclass
class Flood:
    """What the flood's clients got back so far, by status (0: no answer)."""

    statuses: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        return ", ".join(f"{count} × {status}" for status, count in sorted(self.statuses.items()))


@contextlib.contextmanager
def flooding(port: int, requests: list[bytes], clients: int) -> Iterator[Flood]:
    """`clients` connections at once, each sending its request (client n: requests[n % len]) again
    as soon as it has the answer, for as long as the block runs; in a thread of its own.
    Leaving the block drops the requests in flight rather than waiting for them."""
    flood = Flood()
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def client(request: bytes) -> None:
        while True:
            status, _ = await exchange(port, request)
            flood.statuses[status] += 1

    async def run() -> None:
        tasks = [asyncio.create_task(client(requests[number % len(requests)])) for number in range(clients)]
        started.set()
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    started.wait()
    try:
        yield flood
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@dataclass(frozen=True)
class Paced:
    """The answers of requests sent at a steady pace: (status, seconds from sending to the full answer)."""

    answers: list[tuple[int, float]]

    @property
    def statuses(self) -> list[int]:
        return [status for status, _ in self.answers]

    def percentile(self, fraction: float) -> float:
        """Seconds below which `fraction` of the answers came (nearest rank)."""
        ordered = sorted(seconds for _, seconds in self.answers)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    def __str__(self) -> str:
        return (
            f"{len(self.answers)} sent, statuses {dict(Counter(self.statuses))}, p50 {self.percentile(0.5):.3f} s, "
            f"p99 {self.percentile(0.99):.3f} s, max {self.percentile(1):.3f} s"
        )


def paced(send: Callable[[], int], every: float, seconds: float) -> Paced:
    """Call `send` (it returns a status) every `every` seconds for `seconds`, one call at a time;
    a call that takes longer delays the next one."""
    answers = []
    start = time.monotonic()
    for number in range(round(seconds / every)):
        time.sleep(max(0.0, start + number * every - time.monotonic()))
        sent = time.perf_counter()
        status = send()
        answers.append((status, time.perf_counter() - sent))
    return Paced(answers)


def until_taken(send: Callable[[], requests.Response | None], attempts: int = 600) -> requests.Response | None:
    """The answer of `send`, sent again while it is the busy 503, as the site's script does
    (after BUSY_PAUSE rather than Retry-After, to keep tests short)."""
    for _ in range(attempts):
        response = send()
        if response is None or not retry_soon(response.status_code, int(response.headers.get("Retry-After", 0))):
            return response
        time.sleep(BUSY_PAUSE)
    return response

"""A small load generator: N concurrent clients replaying one prepared request over loopback.

asyncio with pre-built request bytes, one connection per request (gunicorn's
sync workers close after each answer anyway), so the generator itself costs
little CPU on a 2-core machine; its CPU time is reported next to the figures
so a reader can judge how much it took from the server.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart


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


@dataclass(frozen=True)
class LoadResult:
    """What a run produced: status counts, per-request latencies (s), wall and generator CPU time."""

    statuses: Counter
    latencies: list[float]
    elapsed: float
    client_cpu: float

    def per_second(self) -> float:
        """Accepted answers (202) per second of the run."""
        return self.statuses[202] / self.elapsed

    def percentile(self, fraction: float) -> float:
        """Latency below which `fraction` of requests finished (nearest rank), in seconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def _exchange(port: int, request: bytes) -> int:
    """Send one request, read the whole answer, return its status (0 for a failed connection)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
    except OSError:
        return 0
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


async def _run(port: int, request: bytes, clients: int, total: int) -> LoadResult:
    statuses: Counter = Counter()
    latencies: list[float] = []
    remaining = iter(range(total))

    async def client() -> None:
        for _ in remaining:  # shared iterator: the clients together send exactly `total`
            started = time.perf_counter()
            statuses[await _exchange(port, request)] += 1
            latencies.append(time.perf_counter() - started)

    # This thread only: the benchmark's SMTP sink runs in another thread of the same process.
    cpu_before = resource.getrusage(resource.RUSAGE_THREAD)
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_THREAD)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return LoadResult(statuses, latencies, elapsed, cpu)


def run(port: int, request: bytes, clients: int, total: int) -> LoadResult:
    """Send `request` `total` times from `clients` concurrent clients; bounded by count, not time."""
    return asyncio.run(_run(port, request, clients, total))

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

from harness.flood import BUSY_PAUSE, exchange, is_busy


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


async def _run(port: int, request: bytes, clients: int, total: int) -> LoadResult:
    statuses: Counter = Counter()
    latencies: list[float] = []
    remaining = iter(range(total))

    async def client() -> None:
        for _ in remaining:  # shared iterator: the clients together send exactly `total`
            started = time.perf_counter()
            status, head = await exchange(port, request)
            while is_busy(status, head):  # every upload slot taken: sent again, as the site's script does
                statuses["busy"] += 1
                await asyncio.sleep(BUSY_PAUSE)
                status, head = await exchange(port, request)
            statuses[status] += 1
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
    """Send `request` `total` times from `clients` concurrent clients; bounded by count, not time.

    An upload answered "busy" (every upload slot taken) is sent again after a short pause, and
    counted under "busy": its latency runs from the first try to the answer that is not busy."""
    return asyncio.run(_run(port, request, clients, total))

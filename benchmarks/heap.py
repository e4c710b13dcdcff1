"""What a benchmark worker has allocated, as malloc counts it: the memory an upload costs, not what RSS keeps.

RSS says what a process holds, including memory freed and kept by malloc for
later, and the one-time growth of a worker's first upload (imports, SQLite's
page cache, the delivery thread's arena); after a warm-up it hides costs that
reuse memory freed earlier. glibc's mallinfo2() counts the bytes in use right
now, in every thread's arena and in mmapped blocks (every buffer of a resumé
is one: forms_service/memory.py), so its peak during an upload, less its level
before, is what that upload costs. A thread in each worker samples it and
writes `<pid>.json` ({"current", "peak"}) into BENCHMARK_HEAP_DIR; touching
the file `reset` there starts a new peak from the current level. Python's own
small-object arenas are not counted (they hold no buffer larger than 512
bytes); the RSS rows of the benchmark count them.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
import time
from pathlib import Path

DIRECTORY_VARIABLE = "BENCHMARK_HEAP_DIR"
RESET_FILE = "reset"
SAMPLE_SECONDS = 0.001
WRITE_SECONDS = 0.05


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def in_use() -> int:
    """Bytes malloc has handed out and not had back (in the arenas, and in mmapped blocks)."""
    info = _mallinfo2()
    return info.uordblks + info.hblkhd


_mallinfo2 = ctypes.CDLL(None).mallinfo2  # glibc 2.33 or newer (Debian 12 has 2.36)
_mallinfo2.restype = _MallInfo2


def start_sampling() -> None:
    """In this worker, when BENCHMARK_HEAP_DIR is set: sample in_use() in a daemon thread."""
    directory = os.environ.get(DIRECTORY_VARIABLE)
    if directory:
        threading.Thread(target=_sample, args=(Path(directory),), daemon=True, name="heap-sampler").start()


def _sample(directory: Path) -> None:
    report, reset = directory / f"{os.getpid()}.json", directory / RESET_FILE
    seen, peak, written = None, 0, 0.0
    while True:
        current = in_use()
        stamp = reset.stat().st_mtime_ns if reset.exists() else None
        if stamp != seen:
            seen, peak = stamp, current
        peak = max(peak, current)
        if time.monotonic() - written >= WRITE_SECONDS:
            draft = report.with_suffix(".tmp")
            draft.write_text(json.dumps({"current": current, "peak": peak}))
            draft.replace(report)  # a reader never sees half a report
            written = time.monotonic()
        time.sleep(SAMPLE_SECONDS)


def reset(directory: Path) -> dict[int, int]:
    """Start a new peak in every sampling worker; returns each worker's level at the reset."""
    (directory / RESET_FILE).write_text(str(time.monotonic_ns()))
    time.sleep(3 * WRITE_SECONDS)  # every sampler has seen the reset and written its level since
    return {pid: figures["current"] for pid, figures in read(directory).items()}


def read(directory: Path) -> dict[int, dict[str, int]]:
    """Each worker's last report: {pid: {"current": bytes, "peak": bytes}}."""
    time.sleep(2 * WRITE_SECONDS)  # the peak of what just ended has been written
    return {int(path.stem): json.loads(path.read_text()) for path in directory.glob("*.json")}


def growth(directory: Path, levels: dict[int, int]) -> int:
    """The largest peak above the level at the reset, over the workers."""
    return max(figures["peak"] - levels.get(pid, figures["peak"]) for pid, figures in read(directory).items())

"""A memory cgroup (v1) of its own, to run the servers under the memory a small server leaves them.

Made under the cgroup this process is in (so whatever bounds the machine
bounds it too), with swap bounded as tightly as memory when the kernel counts
swap (`memory.memsw.*`), so that swapping cannot hide an overrun. A process
joins it before it executes its program (`command`), so gunicorn's workers and
nginx's, forked later, are in it from their start.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
EMPTY_TIMEOUT = 10.0  # what a killed process may take to leave the cgroup


def own_memory_cgroup() -> Path:
    """The memory cgroup this process is in, under MEMORY_ROOT (cgroups(7): /proc/self/cgroup)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return MEMORY_ROOT / path.lstrip("/")
    raise OSError("this process is in no memory cgroup (no cgroup v1 memory controller)")


def unavailable() -> str | None:
    """Why no memory cgroup can be made here, or None: a test skips with this reason."""
    try:
        parent = own_memory_cgroup()
    except OSError as error:
        return str(error)
    if not (parent / "memory.limit_in_bytes").exists():
        return f"no cgroup v1 memory controller at {parent}"
    if not os.access(parent, os.W_OK):
        return f"{parent} is not writable (run as root, with the memory controller mounted read-write)"
    return None


class MemoryCgroup:
    """A fresh memory cgroup limited to `limit` bytes (memory and memory + swap); a context manager
    that removes it on exit, once every process in it is gone (it stops none itself)."""

    def __init__(self, limit: int, name: str = "forms-test"):
        self.path = own_memory_cgroup() / f"{name}-{os.getpid()}-{secrets.token_hex(4)}"
        self.limit = limit

    def __enter__(self) -> MemoryCgroup:
        self.path.mkdir()
        self._write("memory.limit_in_bytes", self.limit)  # first: memsw may not go below it
        if (self.path / "memory.memsw.limit_in_bytes").exists():
            self._write("memory.memsw.limit_in_bytes", self.limit)
        return self

    def __exit__(self, *exc_info) -> None:
        deadline = time.monotonic() + EMPTY_TIMEOUT
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)  # a process stopped by its owner is reaped after it leaves
        self.path.rmdir()  # fails loudly if a process was left running in it

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this cgroup: a shell joins it, then becomes the program (same pid)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def pids(self) -> list[int]:
        return [int(pid) for pid in self._read("cgroup.procs").split()]

    def stats(self) -> dict[str, int]:
        """What the kernel counted: peak usage (page cache included), times the limit was hit,
        processes the OOM killer killed (when the kernel reports it), and the current page cache and RSS."""
        stat = dict(line.split() for line in self._read("memory.stat").splitlines())
        oom = dict(line.split() for line in self._read("memory.oom_control").splitlines())
        figures = {
            "limit": int(self._read("memory.limit_in_bytes")),
            "max_usage": int(self._read("memory.max_usage_in_bytes")),
            "failcnt": int(self._read("memory.failcnt")),
            "cache": int(stat["cache"]),
            "rss": int(stat["rss"]),
        }
        if (self.path / "memory.memsw.max_usage_in_bytes").exists():
            figures["memsw_max_usage"] = int(self._read("memory.memsw.max_usage_in_bytes"))
        if "oom_kill" in oom:  # Linux 4.13 and later
            figures["oom_kill"] = int(oom["oom_kill"])
        return figures

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def _write(self, name: str, value: int) -> None:
        (self.path / name).write_text(str(value))

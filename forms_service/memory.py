"""How a worker process gives memory back: large buffers go straight back to the system when freed.

A resumé passes through buffers of several megabytes. glibc's malloc serves such buffers with mmap and unmaps
them when freed, but raises that threshold to the largest buffer freed so far (up to 32 MB): the next ones come
from the heap of the thread that allocated them, which keeps what is freed. Fixed at 1 MB, a worker's memory
comes back down after each upload instead of holding the peak of both its threads (benchmarks/, "memory").
Without glibc (musl), nothing is changed.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1024 * 1024


def give_back_large_buffers() -> bool:
    """Fix glibc's mmap threshold at 1 MB in this process; False where there is no mallopt."""
    # The process's own symbols, libc's among them: find_library would run ldconfig in a subprocess.
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))

"""The work one upload may cost to check, shared by every module that reads it.

Every loop that reads an upload spends from one Budget: counts that grow with
the work done (tokens, XML elements, bytes and streams inflated, objects
followed), limits on a single item (nesting depth, elements of one part,
definitions of one object), and the thread's CPU time as a backstop. Past any
of them the check stops at once and the file is refused as damaged: an honest
CV stays far within (a 30-page CV holds about 8,000 XML elements, a 5 MB PDF
from a word processor about 100,000 tokens), and what needs more is a file no
reader should be asked to open either. So no upload, however built, holds a
worker for more than about a second of CPU.
"""

from __future__ import annotations

import time

CPU_SECONDS = 1.0
LIMITS = {
    "inflated": 50 * 1024 * 1024,  # bytes inflated from a package's parts, a piece at a time
    "streams": 1000,  # PDF object streams inflated
    "stream_bytes": 16 * 1024 * 1024,  # their content, kept while the PDF is checked
    "tokens": 500_000,  # PDF syntax read: names, brackets, strings, keywords
    "objects": 200_000,  # PDF object definitions recorded
    "references": 256,  # PDF references followed from an /OpenAction
    "elements": 1_000_000,  # XML elements read, all parts together
}
MAX_ELEMENTS_PER_PART = 500_000
MAX_XML_DEPTH = 1000  # Word nests tables 63 deep, about 4 elements each
MAX_PDF_DEPTH = 256  # arrays and dictionaries inside each other
MAX_DEFINITIONS = 256  # definitions of one PDF object (each incremental update may add one)


class OverBudget(Exception):
    """Checking the upload needs more work than any honest document does."""


class Budget:
    """What is left for one upload: counts from LIMITS, and CPU time until a deadline."""

    def __init__(self, cpu_seconds: float = CPU_SECONDS) -> None:
        self.left = dict(LIMITS)
        self.deadline = time.thread_time() + cpu_seconds

    def spend(self, counter: str, amount: int = 1) -> None:
        """Take `amount` from `counter`; raise OverBudget past it, or once the CPU time is spent."""
        self.left[counter] -= amount
        if self.left[counter] < 0:
            raise OverBudget(counter)
        if time.thread_time() > self.deadline:
            raise OverBudget("cpu")

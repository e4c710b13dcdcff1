"""The work one upload may cost to check, shared by every module that reads it: counts that grow with the
work, limits on one item, and the thread's CPU time as a backstop. Past any of them the file is refused as
damaged; LibreOffice's exports of a 30-page CV use less than a tenth of each (README.md, "The form relay
service")."""

from __future__ import annotations

import time

CPU_SECONDS = 1.0
CLOCK_EVERY = 32  # spends between two looks at the clock (a system call): at most a few milliseconds of work
LIMITS = {
    "inflated": 50 * 1024 * 1024,  # bytes inflated from a package's parts, a piece at a time
    "streams": 1000,  # PDF object streams inflated
    "stream_bytes": 16 * 1024 * 1024,  # their content, kept while the PDF is checked
    "tokens": 500_000,  # PDF syntax read: names, brackets, strings, keywords
    "objects": 50_000,  # PDF object definitions recorded
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
        self.spends = 0

    def spend(self, counter: str, amount: int = 1) -> None:
        """Take `amount` from `counter`; raise OverBudget past it, or once the CPU time is spent."""
        self.left[counter] -= amount
        if self.left[counter] < 0:
            raise OverBudget(counter)
        self.spends += 1
        if self.spends % CLOCK_EVERY == 0 and time.thread_time() > self.deadline:
            raise OverBudget("cpu")

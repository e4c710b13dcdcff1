"""The tests' aiosmtpd sink (STARTTLS + AUTH, trustme CA), counting connections and arrival times.

Connections are counted where they are made, at the server, so "connections
reused" is measured rather than inferred from the service's own code.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from harness.smtp_sink import SinkHandler, SmtpSink


@dataclass
class TimedHandler(SinkHandler):
    """SinkHandler that also notes when each message arrived (monotonic seconds)."""

    arrivals: list[float] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.arrivals.append(time.monotonic())
        return reply


class CountingSink(SmtpSink):
    """An SmtpSink that records arrival times and counts SMTP connections."""

    def __init__(self):
        self.ca = trustme.CA()
        super().__init__(self.ca, mode="starttls", auth=True)
        self.handler = self.controller.handler = TimedHandler()
        self.connections = 0
        make_server = self.controller.factory

        def counted_factory():
            # aiosmtpd builds one protocol object per accepted TCP connection.
            self.connections += 1
            return make_server()

        self.controller.factory = counted_factory
        self._ca_dir = tempfile.TemporaryDirectory()
        self.ca_file = str(Path(self._ca_dir.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)

    def stop(self) -> None:
        super().stop()
        self._ca_dir.cleanup()

    def reset(self) -> None:
        """Forget messages, arrivals and connections between runs."""
        self.handler.reset()
        self.handler.arrivals.clear()
        self.connections = 0

    def wait_for(self, count: int, timeout: float) -> int:
        """Block until `count` messages arrived or `timeout` passed; return how many arrived."""
        return len(self.handler.wait_for(count, timeout))

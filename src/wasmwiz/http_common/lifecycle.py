"""The serving process's lifecycle (starting, ready, draining) and its requests in flight.

Here, in the HTTP layer both adapters share, because its users are the HTTP side of the
app: `create_app` builds it and marks it ready, the draining middleware counts requests
and refuses work while draining, /health/ready reports it, and `wasmwiz serve`'s SIGTERM
handler begins draining.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum

logger = logging.getLogger(__name__)


class Phase(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Lifecycle:
    """Where the process is in its life, and how many requests it is serving.

    Built before the app starts so the HTTP layer can refuse work while starting or
    draining; the lifespan marks it ready, and a SIGTERM handler marks it draining.
    """

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def mark_ready(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY

    def begin_draining(self) -> None:
        if self.phase is not Phase.DRAINING:
            logger.info("draining: %d request(s) in flight", self._in_flight)
        self.phase = Phase.DRAINING

    def request_started(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no request is in flight (bound it with `asyncio.timeout`)."""
        await self._idle.wait()

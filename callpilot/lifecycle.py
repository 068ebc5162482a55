"""One start/stop protocol for the server's runtimes: the app's lifespan starts them in dependency order and
stops them in reverse (a runtime stops only after everything that uses it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger("callpilot")


class Runtime(Protocol):
    """A part of the server with background work: records, ops, handoff, the leader, voice, the trainer."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Runtimes:
    """Runtimes listed in dependency order (each may use those before it)."""

    def __init__(self, runtimes: Sequence[Runtime]) -> None:
        self.runtimes = tuple(runtimes)
        self._started: list[Runtime] = []

    async def start(self) -> None:
        """Start each in order; if one fails, those already started are stopped (in reverse) and the error is
        raised."""
        for runtime in self.runtimes:
            try:
                await runtime.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(runtime)

    async def stop(self) -> None:
        """Stop the started ones in reverse order; one failing to stop does not keep the others running."""
        while self._started:
            runtime = self._started.pop()
            try:
                await runtime.stop()
            except Exception:
                log.exception("stopping %s failed", type(runtime).__name__)

"""The backup number (seed 3.3): when callpilot cannot answer well, new calls go on to `backup_number` instead of
being answered badly. Diverted when a supervisor turns the switch on (`POST /supervisor/api/divert`, kept in Redis
so every process diverts), or, with `backup_when_unhealthy`, while the voice models are not ready or failed, or
the ASR's worker processes keep dying.

`Divert.target()` is read on every new call, so it is a cached value (`refresh()` every second in `run()`). Each
transport diverts its own way: SIP answers the INVITE with 302 and the backup number in Contact (the trunk
places the call); Twilio's webhook answers with a <Dial>; Asterisk's dialplan asks `GET /health/divert` before
AudioSocket (README); calls already in progress are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("callpilot.divert")
SWITCH_KEY = "divert"  # under the handoff's key prefix: "1" while a supervisor diverts
ASR_RESTARTS_UNHEALTHY = 3  # this many ASR worker restarts within a minute: the ASR is not healthy


class Divert:
    """Where new calls go instead of the bot (None: the bot answers), and why."""

    def __init__(self, backup: str | None, *, when_unhealthy: bool, voice_status: Callable[[], dict[str, Any]],
                 redis: Callable[[], Any], key: str, clock: Callable[[], float] = time.monotonic,
                 line_backup: Callable[[str], str | None] | None = None, lines_have_backups: bool = False) -> None:
        self.backup, self.when_unhealthy = backup, when_unhealthy
        self.has_backup = backup is not None or lines_have_backups  # anywhere to divert to (else nothing to say)
        self.line_backup = line_backup  # a dialled line's own backup number (settings `lines`)
        self.voice_status, self.redis, self.key, self.clock = voice_status, redis, key, clock
        self.reason: str | None = None  # switch | voice_loading | voice_failed | asr_unhealthy
        self.switch_on = False
        self._restarts: list[tuple[float, int]] = []
        self.diverted = 0

    def target(self, called: str = "") -> str | None:
        """The backup number (the dialled line's own, else the global one) while diverting (counted), else None."""
        backup = (self.line_backup(called) if self.line_backup is not None and called else None) or self.backup
        if backup is None or self.reason is None:
            return None
        self.diverted += 1
        return backup

    async def set_switch(self, on: bool) -> None:
        client = self.redis()
        if client is None:
            raise RuntimeError("the divert switch needs the handoff's Redis")
        if on:
            await client.set(self.key, "1")
        else:
            await client.delete(self.key)
        self.switch_on = on
        self._decide()

    async def refresh(self) -> None:
        client = self.redis()
        if client is not None:
            with contextlib.suppress(Exception):  # Redis away: keep the last known switch
                self.switch_on = bool(await client.get(self.key))
        self._decide()

    def _decide(self) -> None:
        was = self.reason
        self.reason = "switch" if self.switch_on else self._unhealthy() if self.when_unhealthy else None
        if self.reason != was and self.has_backup:
            log.warning("new calls %s", f"go to the backup number ({self.reason})" if self.reason else
                        "are answered by callpilot again")

    def _unhealthy(self) -> str | None:
        status = self.voice_status()
        if status.get("status") == "failed":
            return "voice_failed"
        if status.get("status") == "loading":
            return "voice_loading"
        now, restarts = self.clock(), int(status.get("asr_worker_restarts") or 0)
        self._restarts = [(t, n) for t, n in self._restarts if now - t <= 60.0] + [(now, restarts)]
        if restarts - self._restarts[0][1] >= ASR_RESTARTS_UNHEALTHY:
            return "asr_unhealthy"
        return None

    def status(self) -> dict[str, Any]:
        return {"backup_number": self.backup, "diverting": self.reason is not None and self.backup is not None,
                "reason": self.reason, "switch": self.switch_on, "diverted_calls": self.diverted}

    async def run(self, every_s: float = 1.0) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(every_s)

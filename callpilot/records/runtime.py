"""The records part of the server: database upgrade at start, the writer on the call log, the daily purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from bot.urls import mask_url, mask_urls_in
from callpilot.records.api import router as records_router
from callpilot.records.crm import contact_lookup
from callpilot.records.db import Database
from callpilot.records.redaction import install_log_redaction
from callpilot.records.retention import CallLogRetention, purge_daily
from callpilot.records.stale import close_stale
from callpilot.records.text_channel import ConversationObserver, TextConversations
from callpilot.records.writer import RecordWriter, TicketSink
from callpilot.settings import Settings

log = logging.getLogger("callpilot.records")
STALE_SWEEP_S = 600.0


class RecordsRuntime:
    """Owns the records database, the buffered writer and the purge task for one app.

    `observer` hears the REST channel's conversations (metrics, webhooks), `on_ticket` gets each CRM ticket the
    writer opens or updates; with several processes, the once-only work (recording purge, closing calls a crash
    left open) is done only while `is_leader()` (callpilot.leader; one process alone always leads).
    """

    def __init__(self, settings: Settings, database: Database | None = None, *,
                 observer: ConversationObserver | None = None, on_ticket: TicketSink | None = None,
                 is_leader: Callable[[], bool] = lambda: True) -> None:
        self.settings = settings
        self.database = database or Database.from_settings(settings)
        self.writer = RecordWriter(self.database, retention_days=settings.recording_retention_days,
                                   spill=Path(settings.state_dir) / "records-spill.jsonl", on_ticket=on_ticket)
        self.contacts = contact_lookup(settings, self.database)
        self.text = TextConversations(self.writer.submit, observer=observer)  # REST-channel conversations
        self.text_sweep_s = min(60.0, self.text.idle.total_seconds() / 4)  # how often idle ones are ended
        self.ready = asyncio.Event()
        self.is_leader = is_leader
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Upgrade the schema, then write and purge. When the database is down the upgrade is retried in the
        background (events wait in the writer's queue meanwhile) and the rest of the server starts anyway.
        """
        install_log_redaction()
        upgraded = await self._try_upgrade(0.0)
        self._tasks.append(asyncio.create_task(self._upgrade_then_run(upgraded), name="records-start"))
        self._tasks.append(asyncio.create_task(self._end_idle_texts(), name="records-text-idle"))
        if upgraded:
            await self.ready.wait()

    async def _try_upgrade(self, retry_in: float) -> bool:
        try:
            await asyncio.to_thread(self.database.upgrade)
            return True
        except Exception as exc:
            log.error("records database upgrade failed (%s: %s); retrying in %.1f s", type(exc).__name__,
                      mask_urls_in(str(exc)),
                      retry_in or 0.5)
            return False

    async def _upgrade_then_run(self, upgraded: bool) -> None:
        delay = 0.5
        while not upgraded:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
            upgraded = await self._try_upgrade(delay)
        self.writer.start()
        self.ready.set()
        self._tasks.append(asyncio.create_task(self._close_stale_forever(), name="records-stale"))
        log.info("call records in %s", mask_url(self.database.engine.url.render_as_string(hide_password=False)))
        await purge_daily(self.database, self.settings.records_purge_interval_s,
                          call_log=CallLogRetention(self.settings.call_log, self.settings.recording_retention_days),
                          is_leader=lambda: self.is_leader())

    async def _close_stale_forever(self) -> None:
        """Calls a crashed process left `in_progress` (older than any call may last) are closed, at start and
        every `STALE_SWEEP_S`."""
        older_than = timedelta(seconds=self.settings.max_call_s + 120)
        while True:
            if self.is_leader():
                try:
                    await asyncio.to_thread(close_stale, self.database, older_than=older_than,
                                            call_log=self.settings.call_log)
                except Exception:
                    log.exception("closing calls left open failed")
            await asyncio.sleep(STALE_SWEEP_S if self.is_leader() else 60.0)

    async def _end_idle_texts(self) -> None:
        while True:
            await asyncio.sleep(self.text_sweep_s)
            try:
                self.text.end_idle()
            except Exception:
                log.exception("ending idle text conversations failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.text.close_all()
        await asyncio.to_thread(self.writer.close)
        self.database.dispose()


def mount_records(app: FastAPI, runtime: RecordsRuntime) -> RecordsRuntime:
    """Add `/api/v1` and put the database, writer and contact lookup on `app.state`."""
    app.state.records = runtime
    app.state.database = runtime.database
    app.state.contacts = runtime.contacts
    app.include_router(records_router)
    return runtime

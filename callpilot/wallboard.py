"""Today's numbers per queue for the supervisor's wallboard, from the call records: calls offered to agents,
answered, abandoned, the service level (answered within `service_level_s`) and the average speed of answer.
`handoff.supervisor_page` asks for them through its `QueueDay` protocol, so `handoff` knows no database."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from callpilot.ops.facts import PHONE_CHANNELS, CallFact, fact_from_record
from callpilot.ops.kpi import compute_kpis
from callpilot.records.db import Database
from callpilot.records.models import CallRecord


class RecordsQueueDay:
    """`QueueDay` on `app.state.database` (no database: no numbers)."""

    def __init__(self, app: FastAPI, *, service_level_s: float) -> None:
        self.app, self.service_level_s = app, service_level_s

    async def today(self, today_starts: datetime | None = None) -> dict[str, dict[str, Any]]:
        database: Database | None = getattr(self.app.state, "database", None)
        if database is None:
            return {}
        now = datetime.now(UTC)
        start = today_starts or now.replace(hour=0, minute=0, second=0, microsecond=0)

        def read() -> dict[str, list[CallFact]]:
            by_queue: dict[str, list[CallFact]] = defaultdict(list)
            with database.session() as session:
                rows = session.scalars(select(CallRecord).where(
                    CallRecord.handoff_at >= start, CallRecord.queue.is_not(None),
                    CallRecord.channel.in_(list(PHONE_CHANNELS))))
                for row in rows:
                    by_queue[str(row.queue)].append(fact_from_record(row))
            return by_queue

        by_queue = await asyncio.to_thread(read)
        result = {}
        for queue, facts in by_queue.items():
            k = compute_kpis(facts, start - timedelta(days=1), now + timedelta(seconds=1),
                             service_level_s=self.service_level_s)
            result[queue] = {"offered": k.offered, "answered": k.answered, "abandoned": k.abandoned,
                             "service_level": k.service_level, "asa_s": k.average_speed_of_answer_s,
                             "service_level_s": self.service_level_s}
        return result

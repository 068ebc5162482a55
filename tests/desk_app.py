"""The desk's routes in an app of their own on the real HandoffService (fakeredis), for the agent desk's and the
supervisor's tests: the app with its API keys (the `desk` fixture), what the caller's side hears from the bridge,
and waiting for a websocket message of a type."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from fakeredis import aioredis as fake_aioredis
from fastapi import FastAPI
from starlette.testclient import TestClient, WebSocketTestSession

from handoff.bridge import AudioBridge, HoldSignal
from handoff.config import HandoffConfig
from handoff.desk import mount_desk
from handoff.desk_parts import DeskParts
from handoff.testing import Floor, KeyTable, decision, make_floor

SUPERVISOR_KEY, ADMIN_KEY, AGENT_KEY = "cp_sup_secret", "cp_adm_secret", "cp_agt_secret"
AS_SUPERVISOR = {"Authorization": f"Bearer {SUPERVISOR_KEY}"}


class Desk:
    """An app with only the desk's routes, on a floor of its own; `run` calls async code on the app's loop."""

    def __init__(self, tmp_path: Path, config: HandoffConfig | None = None) -> None:
        server = fakeredis.FakeServer()
        self.floor: Floor = make_floor(fake_aioredis.FakeRedis(server=server, decode_responses=True), tmp_path,
                                       config=config)
        self.bridge = AudioBridge(fake_aioredis.FakeRedis(server=server))

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.floor.service.start(run_router=False)
            yield

        self.keys = {SUPERVISOR_KEY: "supervisor", ADMIN_KEY: "admin", AGENT_KEY: "agent"}  # API key -> role
        self.auth = KeyTable(self.keys)

        self.app = FastAPI(lifespan=lifespan)
        mount_desk(self.app, DeskParts(lambda: (self.floor.service, self.bridge), supervisor_auth=self.auth))
        self.client = TestClient(self.app)

    def run(self, fn: Any, *args: Any) -> Any:
        portal = self.client.portal
        assert portal is not None
        return portal.call(fn, *args)

    def hire(self, name: str, skills: str = "orders") -> str:
        agent = self.floor.hire(name, {s: 3 for s in skills.split(",")})
        return self.floor.tokens[agent.agent_id]

    def call_in(self, call_id: str = "call-1") -> None:
        async def go() -> None:
            await self.floor.service.request(call_id, decision(created_at=self.floor.clock.now - 30))
            await self.floor.service.router.tick()

        self.run(go)


@pytest.fixture(name="desk")
def desk_app(tmp_path: Path) -> Iterator[Desk]:
    made = Desk(tmp_path)
    with made.client:
        yield made


class CallerSide:
    """What the call's process would hear from the bridge, collected on the app's loop."""

    def __init__(self, desk: Desk, call_id: str) -> None:
        self.desk, self.heard = desk, []  # type: list[bytes | HoldSignal]
        subscribed = threading.Event()

        async def collect() -> None:
            async with desk.bridge.listen(call_id, "caller") as heard:
                subscribed.set()
                async for item in heard:
                    self.heard.append(item)

        self.task = desk.run(lambda: [asyncio.ensure_future(collect())])[0]  # a list: the portal must not await it
        assert subscribed.wait(5)

    def wait_for(self, count: int) -> list[bytes | HoldSignal]:
        deadline = time.monotonic() + 5
        while len(self.heard) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.heard

    def stop(self) -> None:
        self.desk.run(self.task.cancel)


def receive_until(ws: WebSocketTestSession, kind: str, limit: int = 50) -> dict[str, Any]:
    """The next JSON message of this type (others, like status changes, are skipped)."""
    for _ in range(limit):
        message = ws.receive()
        if message.get("text"):
            data: dict[str, Any] = json.loads(message["text"])
            if data["type"] == kind:
                return data
    raise AssertionError(f"no {kind!r} message")

"""Redis for the tests: a private redis-server with AOF that a test may kill and start again (`private` fixture), a
fresh in-process Redis per test for apps that use the embedded one, and waiting until a channel has its
subscribers (so what the test publishes next is heard)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis

from handoff.redis_conn import process_fake_server
from tests.voice_helpers import free_port


class PrivateRedis:
    """redis-server on a free port with its data in `folder`, every write appended and synced (AOF)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(name="private")
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def own_embedded_redis() -> None:
    """A fresh in-process Redis for this test's app: no call left waiting by another test is offered first."""
    process_fake_server.cache_clear()


async def wait_subscribed(client: aredis.Redis, *channels: str, count: int = 1, timeout_s: float = 5.0) -> None:
    """Until each channel has at least `count` subscribers (PUBSUB NUMSUB), e.g. an agent's desk listening."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = {name.decode() if isinstance(name, bytes) else str(name): int(n)
                  for name, n in await client.pubsub_numsub(*channels)}
        short = {name: n for name, n in counts.items() if n < count}
        if not short:
            return
        assert time.monotonic() < deadline, f"after {timeout_s} s, fewer than {count} subscriber(s) on {short}"
        await asyncio.sleep(0.005)

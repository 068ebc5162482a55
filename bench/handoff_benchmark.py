"""Handoff routing speed on the real Redis: enqueue -> first offer latency, and handoffs routed per second.

Usage: .venv/bin/python bench/handoff_benchmark.py [--url redis://127.0.0.1:6379] [--calls 3000]
                                                   [--out bench/results/handoff.json]
Latency: calls arrive one by one (about 100 a second) while the router task runs, and the time is taken
from `request()` to the Offer arriving on the agent's pub/sub channel (what a desktop would see).
Throughput: `--calls` handoffs wait in the queue with as many free agents; one router process routes
them all (reserve the agent, write the offer, publish it) and we count offers per second of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from handoff.config import HandoffConfig
from handoff.contacts import BackOfficeContacts
from handoff.directory import AgentDirectory
from handoff.events import Offer, decode_agent_update
from handoff.model import AgentStatus
from handoff.redis_conn import Keys
from handoff.service import HandoffService
from handoff.testing import cleanup, decision

ROOT = Path(__file__).resolve().parent.parent


def make_service(client: aredis.Redis, prefix: str, tmp: Path, agents: int) -> HandoffService:
    config = HandoffConfig.model_validate({"tick_s": 0.25, "heartbeat_ttl_s": 600,
                                           "queues": {"general": {"ring_timeout_s": 600, "max_wait_s": 3600}}})
    directory = AgentDirectory(tmp / f"{prefix.strip(':').replace(':', '-')}.json")
    data = {"agents": [{"agent_id": f"a{i:05d}", "name": f"Agent {i}", "skills": {"general": 3},
                        "created_at": 0, "token_sha256": uuid.uuid4().hex, "expires_at": None}
                       for i in range(agents)]}
    directory.path.write_text(json.dumps(data))
    return HandoffService(client, config=config, directory=directory, contacts=BackOfficeContacts(),
                          keys=Keys(prefix), consumer="bench-router")


async def login_all(service: HandoffService, count: int) -> None:
    for start in range(0, count, 50):
        await asyncio.gather(*(service.set_status(f"a{i:05d}", AgentStatus.AVAILABLE)
                               for i in range(start, min(count, start + 50))))


async def latency(url: str, tmp: Path, calls: int) -> list[float]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    client = aredis.Redis.from_url(url, decode_responses=True)
    listener = aredis.Redis.from_url(url, decode_responses=True)
    service = make_service(client, prefix, tmp, calls)
    try:
        await service.start(run_router=False)
        await login_all(service, calls)
        await service.start()
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        pubsub = listener.pubsub()
        await pubsub.psubscribe(f"{prefix}events:agent:*")

        async def listen() -> None:
            while len(seen) < calls:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    update = decode_agent_update(message["data"])
                    if isinstance(update, Offer):
                        seen.setdefault(update.context.call_id, time.perf_counter())

        task = asyncio.create_task(listen())
        for n in range(calls):
            call_id = f"lat-{n}"
            sent[call_id] = time.perf_counter()
            await service.request(call_id, decision(skill="general", created_at=time.time()))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(task, 30)
        await pubsub.aclose()
        return [(seen[c] - sent[c]) * 1000 for c in sent]
    finally:
        await service.stop()
        await cleanup(client, prefix)
        await client.aclose()
        await listener.aclose()


async def throughput(url: str, tmp: Path, calls: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    client = aredis.Redis.from_url(url, decode_responses=True)
    service = make_service(client, prefix, tmp, calls)
    try:
        await service.start(run_router=False)
        await login_all(service, calls)
        for start in range(0, calls, 50):
            await asyncio.gather(*(service.request(f"tp-{i}", decision(skill="general", created_at=time.time()))
                                   for i in range(start, min(calls, start + 50))))
        began, ticks, offered = time.perf_counter(), 0, 0
        while offered < calls:
            actions = await service.router.tick()
            ticks += 1
            offered += sum(1 for a in actions if type(a).__name__ == "Ring")
            if ticks > 1000:
                raise RuntimeError(f"only {offered} of {calls} calls offered")
        elapsed = time.perf_counter() - began
        ringing = sum(1 for a in (await service.snapshot()).agents if a.status is AgentStatus.RINGING)
        return {"calls": calls, "seconds": round(elapsed, 3), "ticks": ticks, "agents_ringing": ringing,
                "handoffs_per_second": round(calls / elapsed, 1)}
    finally:
        await cleanup(client, prefix)
        await client.aclose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("CALLPILOT_REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/handoff.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        lat = await latency(args.url, Path(tmp), args.latency_calls)
        tp = await throughput(args.url, Path(tmp), args.calls)
    result = {
        "offer_latency_ms_p50": round(statistics.median(lat), 2),
        "offer_latency_ms_p95": round(percentile(lat, 0.95), 2),
        "offer_latency_ms_max": round(max(lat), 2),
        "latency_calls": len(lat),
        "handoffs_per_second": tp["handoffs_per_second"],
        "throughput": tp,
        "redis": args.url,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other work during the run)",
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
        "python": platform.python_version(),
        "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())

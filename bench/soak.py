"""Soak: 40 concurrent voice calls across two `callpilot run` processes for 10 minutes, on one real Redis and one
real PostgreSQL, with varied callers and handoffs to agents signed in on either process.

Each of the 40 lines (20 dial process A, 20 process B) places calls back to back until the time is up. A call's
caller is drawn from the voice benchmark's pool (every demo intent, three voices, one word to ~8 s, some with
a pause mid-sentence, 8 kHz mu-law): either the benchmark's call (greeting, question, interruption during the
answer, the answer to it) or, for a share of calls, "I want to talk to a real person please": six agents (three
desks on each process, no browser) take the offers, talk for 4-8 s, hang up and wrap up. Measured per run:

- failed calls: a call whose greeting never ended, whose question or interruption got no answer, that raised
  (dropped), or whose caller was still on hold after 150 s (the queues overflow to a callback after 120 s: a
  wait ending there is a handled call, counted apart); an interruption that did not stop the bot is counted as
  `barge_in_missed` (and how many of those callers had been handed over: no bot to stop), one that came after
  the answer had ended as `interruption_after_the_answer`, neither as failed;
- lost records: calls placed whose row is missing from PostgreSQL's `calls` table, still `in_progress`, or
  (handed to an agent) without the agent's wrap-up;
- RSS growth of each process (the server and its ASR workers) from the end of the first minute to the end, and
  the same without what the TTS sentence cache added meanwhile (bounded: it fills, then stays), over the second
  half alone (does it level off?), and each member's MB (the server, each ASR worker) at 10 s, 1 min, half-way
  and the end (which one grows); each server's log (`a.log`, `b.log` in SOAK_DIR, the last run's) has a memory
  dump (`kill -USR2`) at minute 1 and at the end: the growth in between by object type (and by source line when
  the soak runs with PYTHONTRACEMALLOC=1, which the servers inherit);
- the same growth measured robustly (a server's RSS swings by ~20% with the calls in flight): the median of the
  last minute's samples against the median of minute 1 to 2's, and the least-squares trend from minute 1 on (% per
  10 minutes), with every 10-second sample kept in the results;
- turn gaps on the caller's side (the benchmark's definition), p50 / p95, and the machine's load.

Run: .venv/bin/python bench/soak.py [--minutes 10] [--lines 40] [--runs 3] [--out bench/results/soak.json]
(needs redis-server on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432, as `make test` does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import redis
from sqlalchemy import create_engine, text
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from voice_benchmark import (  # noqa: E402
    ANSWER_OVER,
    BARGE_IN_MISSED,
    FRAME,
    PHASE_TIMEOUT_S,
    Caller,
    Utterance,
    caller_pool,
    free_port,
    one_call,
    percentile,
    rss,
    utterance,
    wait_ready,
)

from handoff.config import SKILL_QUEUES  # noqa: E402
from voice_gateway.audio import resample_pcm16  # noqa: E402
from voice_gateway.call_log import LifecycleKind, read_call_log  # noqa: E402
from voice_gateway.events import AudioOut  # noqa: E402
from voice_gateway.simulated_caller import dial_twilio  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_DB = 12
AGENTS = 6
HANDOFF_SHARE = 0.15
HUMAN = ("I want to talk to a real person | please", None)
QUALITY = (BARGE_IN_MISSED, ANSWER_OVER)  # counted, not failed calls
AGENT_WAIT_S = 150.0  # a handed-over caller waits this long for an agent (or the overflow) before it counts as failed
MAX_WAIT_S = 120.0  # the queues' overflow (a callback) comes first: six agents cannot take 40 lines' handoffs


@dataclass
class Outcome:
    line: int
    process: str
    kind: str  # bot | handoff
    call_id: str = ""
    ok: bool = True
    reached_agent: bool = False
    overflow: bool = False
    problems: list[str] = field(default_factory=list)
    turn_gaps_ms: list[float] = field(default_factory=list)


async def handoff_call(url: str, ask: Utterance) -> Outcome:
    """Greeting, "a real person please", then on hold until an agent talks and hangs up (the server ends the call)."""
    outcome = Outcome(0, "", "handoff")
    async with dial_twilio(url) as line:
        outcome.call_id = line.call_id
        caller = Caller(line)
        silence = bytes(FRAME)
        greeting_over = time.perf_counter() + PHASE_TIMEOUT_S
        while time.perf_counter() < greeting_over:  # the greeting, then 1.2 s of quiet
            now = await caller.send(silence)
            heard = caller.events_since(0.0, AudioOut)
            if heard and now - heard[-1] > 1.2:
                break
        for index in range(len(ask.pcm) // FRAME):
            await caller.send(ask.pcm[index * FRAME:(index + 1) * FRAME])
        deadline = time.perf_counter() + AGENT_WAIT_S
        while not line.closed and time.perf_counter() < deadline:
            await caller.send(silence)
        if not line.closed:
            outcome.ok = False
            outcome.problems.append(f"still on the line after {AGENT_WAIT_S:.0f} s")
    return outcome


async def desk(url: str, token: str, voice: bytes, stop: asyncio.Event, seed: int, taken: list[str]) -> None:
    """An agent on one process: takes every offer, talks 4-8 s, hangs up, wraps up; reconnects if dropped."""
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            async with connect(url, ping_interval=None) as ws:
                await ws.send(json.dumps({"type": "hello", "token": token}))
                await ws.send(json.dumps({"type": "status", "status": "available"}))
                call_id: str | None = None
                talk_until = pinged = 0.0
                position = 0
                while not stop.is_set():
                    try:
                        message = await asyncio.wait_for(ws.recv(), 0.02)
                    except TimeoutError:
                        message = None
                    now = time.monotonic()
                    if isinstance(message, str):
                        data = json.loads(message)
                        if data["type"] == "offer":
                            await ws.send(json.dumps({"type": "accept", "offer_id": data["offer_id"]}))
                        elif data["type"] == "connected":
                            call_id, talk_until = data["call_id"], now + rng.uniform(4, 8)
                            taken.append(call_id)
                        elif data["type"] == "error":  # shown: a desk stuck on an error is a finding
                            print(f"desk {seed}: error {data}", file=sys.stderr)
                            if data.get("request") == "hang_up":
                                call_id = None
                        elif data["type"] == "call_ended":
                            call_id = None
                            await ws.send(json.dumps({"type": "wrap_up", "call_id": data["call_id"],
                                                      "disposition": "resolved", "notes": "soak"}))
                    if call_id is not None:
                        await ws.send(voice[position:position + 640].ljust(640, b"\0"))
                        position = (position + 640) % len(voice)
                        if now >= talk_until:
                            await ws.send(json.dumps({"type": "hang_up"}))
                            talk_until = float("inf")
                    if now - pinged > 10:
                        await ws.send(json.dumps({"type": "ping"}))
                        pinged = now
        except Exception as exc:  # a dropped desk signs in again, like the browser's
            print(f"desk {seed}: {exc!r}; reconnecting", file=sys.stderr)
            await asyncio.sleep(1)


async def line_loop(number: int, process: str, url: str, pool: list[tuple[Utterance, Utterance]],
                    human: list[Utterance], until: float, outcomes: list[Outcome]) -> None:
    rng = random.Random(number)
    await asyncio.sleep(rng.uniform(0, 8))  # lines start spread over 8 s
    while time.monotonic() < until - 20:
        try:
            if rng.random() < HANDOFF_SHARE:
                outcome = await handoff_call(url, rng.choice(human))
            else:
                question, interruption = rng.choice(pool)
                result = await one_call(url, question, interruption, 0.0)
                served = [p for p in result.problems if p not in QUALITY]
                outcome = Outcome(number, process, "bot", result.call_id, not served, problems=list(result.problems),
                                  turn_gaps_ms=list(result.turn_gaps_ms))
        except Exception as exc:
            outcome = Outcome(number, process, "error", ok=False, problems=[repr(exc)])
        outcome.line, outcome.process = number, process
        outcomes.append(outcome)
        await asyncio.sleep(rng.uniform(0.5, 3))


def tts_cache_bytes(port: int) -> int:
    """The audio a server's TTS sentence cache holds (`/health/voice`); 0 if it does not answer in time."""
    try:
        return int(httpx.get(f"http://127.0.0.1:{port}/health/voice", timeout=5).json().get("tts_cache_bytes", 0))
    except (httpx.HTTPError, ValueError):
        return 0


def start(name: str, port: int, env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    log = (folder / f"{name}.log").open("wb")  # kept: the soak's errors are read there
    server = subprocess.Popen([sys.executable, "-m", "callpilot", "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    return wait_ready(server, port)


def one_run(minutes: float, lines: int, folder: Path, pool: list[tuple[Utterance, Utterance]],
            human: list[Utterance], agent_voice: bytes) -> dict[str, Any]:
    schema = f"soak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0", "CALLPILOT_LOG_LEVEL": "warning",
            "CALLPILOT_REDIS_URL": redis_url, "CALLPILOT_DATABASE_URL": database,
            "CALLPILOT_RECORDINGS_DIR": str(folder / "recordings"), "CALLPILOT_MAX_CALLS": "40",
            "CALLPILOT_HANDOFF": json.dumps({"queues": {q: {"max_wait_s": MAX_WAIT_S} for q in SKILL_QUEUES}})}
    envs = {name: {**base, "CALLPILOT_STATE_DIR": str(folder / name),
                   "CALLPILOT_CALL_LOG": str(folder / f"{name}.jsonl")} for name in ("a", "b")}
    tokens = []
    for n in range(AGENTS):
        added = subprocess.run([sys.executable, "-m", "callpilot", "agent", "add", f"Agent {n}", "--skills",
                                "orders,returns,tech,billing,general"], cwd=ROOT, env=envs["a"], capture_output=True,
                               text=True, timeout=60, check=True)
        tokens.append(added.stdout.strip())
    ports = {"a": free_port(), "b": free_port()}
    servers = {name: start(name, ports[name], envs[name], folder) for name in ports}
    outcomes: list[Outcome] = []
    taken: list[str] = []
    samples: dict[str, list[tuple[float, int]]] = {"a": [], "b": []}
    members: dict[str, list[dict[str, int]]] = {"a": [], "b": []}  # the same per process: server, ASR workers
    cached: dict[str, list[int]] = {"a": [], "b": []}  # the TTS sentence cache's bytes, sampled with the RSS
    load: list[float] = []
    try:
        procs = {name: psutil.Process(server.pid) for name, server in servers.items()}

        async def soak() -> None:
            stop = asyncio.Event()
            until = time.monotonic() + minutes * 60
            ws = {name: f"ws://127.0.0.1:{port}" for name, port in ports.items()}
            desks = [asyncio.create_task(desk(f"{ws['ab'[n % 2]]}/agent/ws", token, agent_voice, stop, n, taken))
                     for n, token in enumerate(tokens)]
            callers = [asyncio.create_task(line_loop(n, "ab"[n % 2], f"{ws['ab'[n % 2]]}/media/twilio", pool, human,
                                                     until, outcomes)) for n in range(lines)]
            started = time.monotonic()
            while time.monotonic() < until:
                await asyncio.sleep(10)
                for name, proc in procs.items():
                    samples[name].append((time.monotonic() - started, rss(proc)))
                    members[name].append(member_rss(proc))
                    cached[name].append(await asyncio.to_thread(tts_cache_bytes, ports[name]))
                    if len(samples[name]) == 6:  # minute 1: the server logs its memory (again at the end)
                        proc.send_signal(signal.SIGUSR2)
                load.append(os.getloadavg()[0])
            for proc in procs.values():
                proc.send_signal(signal.SIGUSR2)  # what grew since minute 1
            await asyncio.gather(*callers)
            await asyncio.sleep(5)  # the last wrap-ups
            stop.set()
            await asyncio.gather(*desks)

        asyncio.run(soak())
        time.sleep(10)  # the records writers catch up
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
    engine = create_engine(database)
    with engine.connect() as connection:
        query = text("SELECT call_id, status, agent_id, disposition FROM calls")
        rows = {r.call_id: r for r in connection.execute(query)}
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    placed = [o for o in outcomes if o.call_id]
    handed_over = {e.call_id for name in ("a", "b") for e in read_call_log(folder / f"{name}.jsonl")
                   if e.kind is LifecycleKind.HANDOFF}
    missing = [o.call_id for o in placed if o.call_id not in rows]
    open_rows = [o.call_id for o in placed if o.call_id in rows and rows[o.call_id].status == "in_progress"]
    lost = missing + open_rows
    for o in placed:  # a handed-over call: did the caller reach an agent (the desks saw it) or the overflow?
        o.reached_agent = o.call_id in taken
        if o.kind == "handoff" and o.ok and not o.reached_agent:
            o.overflow = True
    unwrapped = [o.call_id for o in placed if o.reached_agent and o.call_id in rows
                 and not rows[o.call_id].disposition]
    gaps = [g for o in outcomes for g in o.turn_gaps_ms]
    growth, beyond_cache, cache_mb, second_half, by_member = {}, {}, {}, {}, {}
    windowed, slope = {}, {}
    for name, series in samples.items():
        windowed[name], slope[name] = window_growth(series)
        at_minute = next((i for i, (at, _) in enumerate(series) if at >= 60), 0)
        # Which process grows: each member's MB at 10 s, at minute 1, half-way and at the end.
        picks = [members[name][i] for i in (0, at_minute, len(series) // 2, -1)]
        by_member[name] = {member: [round(pick.get(member, 0) / 2**20) for pick in picks] for member in picks[-1]}
        first = series[at_minute][1]
        growth[name] = round((series[-1][1] - first) / first * 100, 2)
        # Does it level off? The growth over the run's second half alone (a leak keeps its slope there).
        middle = series[len(series) // 2][1]
        second_half[name] = round((series[-1][1] - middle) / middle * 100, 2)
        cache = cached[name][at_minute], cached[name][-1]
        cache_mb[name] = [round(b / 2**20, 1) for b in cache]
        beyond_cache[name] = round((series[-1][1] - first - (cache[1] - cache[0])) / first * 100, 2)
    failed = [o for o in outcomes if not o.ok]
    return {
        "minutes": minutes, "lines": lines, "calls": len(outcomes),
        "bot_calls": sum(o.kind == "bot" for o in outcomes),
        "handoff_calls": sum(o.kind == "handoff" for o in outcomes),
        "reached_agent": sum(o.reached_agent for o in placed), "overflow": sum(o.overflow for o in placed),
        "failed_calls": len(failed), "failures": [f"{o.process}{o.line} {o.call_id}: {'; '.join(o.problems)}"
                                                  for o in failed][:20],
        "barge_in_missed": sum(BARGE_IN_MISSED in o.problems for o in outcomes),
        # of those: the caller had been handed over (queue or agent: hold music or the agent's voice, no bot)
        "barge_in_missed_handed_over": sum(BARGE_IN_MISSED in o.problems and o.call_id in handed_over
                                           for o in outcomes),
        "interruption_after_the_answer": sum(ANSWER_OVER in o.problems for o in outcomes),
        "lost_records": len(lost) + len(unwrapped), "lost": (lost + unwrapped)[:20],
        "lost_by_kind": {"missing": len(missing), "in_progress": len(open_rows), "no_wrap_up": len(unwrapped)},
        "turn_gap_p50_ms": percentile(gaps, 50), "turn_gap_p95_ms": percentile(gaps, 95), "turns": len(gaps),
        "rss_growth_pct": growth,
        # the same without what the TTS sentence cache added (it fills up to its bound, 64 MB, then stays)
        "rss_growth_pct_beyond_tts_cache": beyond_cache, "tts_cache_mb": cache_mb,
        "rss_growth_pct_second_half": second_half,
        # the same measured robustly: the median of the last minute's samples against the median of minute 1-2's,
        # and the least-squares trend from minute 1 on, in % of minute 1-2's median per 10 minutes
        "rss_growth_pct_window_median": windowed, "rss_trend_pct_per_10min": slope,
        "rss_mb_every_10s": {name: [round(b / 2**20) for _, b in series] for name, series in samples.items()},
        "rss_mb_by_member_10s_1min_half_end": by_member,
        "rss_mb": {name: [round(series[0][1] / 2**20), round(series[-1][1] / 2**20)]
                   for name, series in samples.items()},
        "load_avg_1m": {"median": round(statistics.median(load), 2), "max": round(max(load), 2)},
    }


def window_growth(series: list[tuple[float, int]]) -> tuple[float, float]:
    """A process family's RSS growth robust to its swing with the calls in flight: the median of the last minute's
    10-second samples against the median of minute 1 to 2's (the first minute is warm-up: models, caches, pools),
    and the least-squares slope of every sample from minute 1 on, both in % of that first median (slope per 10 min).
    """
    after = [(at, b) for at, b in series if at >= 60]
    if len(after) < 2:
        return 0.0, 0.0
    start = statistics.median(b for at, b in after if at < 120)
    end = statistics.median(b for at, b in after if at > after[-1][0] - 60)
    times = np.array([at for at, _ in after])
    values = np.array([b for _, b in after], dtype=float)
    per_second = float(np.polyfit(times, values, 1)[0])
    return round((end - start) / start * 100, 2), round(per_second * 600 / start * 100, 2)


def member_rss(server: psutil.Process) -> dict[str, int]:
    """RSS of the server and of each child process (its ASR workers, by pid), named."""
    named = {"server": server.memory_info().rss}
    for child in sorted(server.children(recursive=True), key=lambda c: c.pid):
        try:
            named[f"child{child.pid}"] = child.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    folder = Path(os.environ.get("SOAK_DIR") or ROOT / "build" / "soak")
    folder.mkdir(parents=True, exist_ok=True)
    print("synthesising the callers ...", file=sys.stderr)
    pool = caller_pool(120, seed=11)
    human = [utterance(HUMAN, voice, pause) for voice in ("piper", "hibari", "espeak") for pause in (None, 500)]
    agent_voice = resample_pcm16(human[0].pcm, 8000, 16000)
    runs = []
    for n in range(args.runs):
        print(f"run {n + 1}/{args.runs}: {args.lines} lines for {args.minutes} min", file=sys.stderr)
        runs.append(one_run(args.minutes, args.lines, folder, pool, human, agent_voice))
        print(json.dumps(runs[-1]), file=sys.stderr)

    def spread(key: str) -> dict[str, float | None]:
        values = [float(r[key]) for r in runs if r[key] is not None]
        return {"median": round(float(np.median(values)), 1) if values else None,
                "min": min(values, default=None), "max": max(values, default=None)}

    summary = {key: spread(key) for key in ("calls", "failed_calls", "lost_records", "turn_gap_p50_ms",
                                             "turn_gap_p95_ms")}
    summary["rss_growth_pct_max"] = max(max(r["rss_growth_pct"].values()) for r in runs)
    summary["rss_growth_pct_beyond_tts_cache_max"] = max(max(r["rss_growth_pct_beyond_tts_cache"].values())
                                                         for r in runs)
    summary["rss_growth_pct_second_half_max"] = max(max(r["rss_growth_pct_second_half"].values()) for r in runs)
    summary["rss_growth_pct_window_median_max"] = max(max(r["rss_growth_pct_window_median"].values()) for r in runs)
    summary["rss_trend_pct_per_10min_max"] = max(max(r["rss_trend_pct_per_10min"].values()) for r in runs)
    out = {"benchmark": "soak", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "processes": 2, "agents": AGENTS, "handoff_share": HANDOFF_SHARE, "summary": summary, "runs": runs}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""`callpilot run --workers 2`: two server processes on one HTTP and one AudioSocket port (SO_REUSEPORT), on a
real Redis; new connections reach both, calls are answered, a killed worker is started again, SIGTERM stops
everything (no process left behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from callpilot.settings import Settings, SettingsError
from tests.live_processes import CLI, ROOT, loud_ms, wait_for
from tests.voice_helpers import free_port
from voice_gateway.testing import TwilioCaller

REDIS_DB = 12  # a database of the real Redis of its own, emptied first


def test_workers_need_redis_and_a_fixed_port() -> None:
    with pytest.raises(SettingsError, match="workers > 1 share queues, agents and sessions through Redis"):
        Settings.load(None, {"CALLPILOT_WORKERS": "2"})
    with pytest.raises(SettingsError, match="give a port other than 0"):
        Settings.load(None, {"CALLPILOT_WORKERS": "2", "CALLPILOT_REDIS_URL": "redis://127.0.0.1:6379/0",
                             "CALLPILOT_PORT": "0"})
    assert Settings.load(None, {}).workers == 1


def _health(base: str) -> dict[str, object] | None:
    """/health over a new connection (so the kernel picks a worker each time); None while nobody listens."""
    try:
        with httpx.Client(timeout=5) as client:  # one connection per client
            return dict(client.get(f"{base}/health").json())
    except httpx.HTTPError:
        return None


def _workers_seen(base: str, tries: int = 60) -> dict[int, int]:
    """worker index -> pid, of the ready workers that answered `tries` new connections."""
    seen: dict[int, int] = {}
    for _ in range(tries):
        health = _health(base)
        if health and health.get("status") == "ok" and isinstance(health.get("worker"), int):
            seen[int(health["worker"])] = int(str(health["pid"]))
    return seen


def test_two_workers_share_the_ports_and_one_killed_is_started_again(tmp_path: Path) -> None:
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port, audiosocket_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_REDIS_URL": redis_url,
           "CALLPILOT_STATE_DIR": str(tmp_path / "var"), "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
           "CALLPILOT_RECORDINGS_DIR": str(tmp_path / "recordings"), "CALLPILOT_ASR_PROCESSES": "1"}
    log = (tmp_path / "server.log").open("wb")
    supervisor = subprocess.Popen([*CLI, "run", "--workers", "2", "--port", str(port), "--audiosocket-port",
                                   str(audiosocket_port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    family: list[psutil.Process] = []
    try:
        seen: dict[int, int] = {}

        def both_ready() -> bool:
            assert supervisor.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            seen.update(_workers_seen(base, 20))
            return set(seen) == {0, 1}

        wait_for(both_ready, 300, "both workers ready and reached through the one port")
        family = [psutil.Process(supervisor.pid), *psutil.Process(supervisor.pid).children(recursive=True)]
        assert seen[0] != seen[1]

        def audiosocket_listeners() -> set[int]:
            return {pid for pid in seen.values() for c in psutil.Process(pid).net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == audiosocket_port}

        wait_for(lambda: audiosocket_listeners() == set(seen.values()), 60, "both workers on the AudioSocket port")

        # Calls are answered, whichever worker takes them.
        callers = [TwilioCaller(f"ws://127.0.0.1:{port}/media/twilio", b"", speak_at_s=0.0, limit_s=8.0)
                   for _ in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(30)
            assert caller.error is None and loud_ms(bytes(caller.heard)) > 1000  # the greeting

        # A worker killed outright is started again; the other one serves meanwhile.
        os.kill(seen[1], signal.SIGKILL)
        restarted: dict[int, int] = {}

        def worker_1_back() -> bool:
            restarted.update(_workers_seen(base, 10))
            return restarted.get(1, seen[1]) != seen[1]

        wait_for(worker_1_back, 300, "worker 1 started again under a new pid")
        assert restarted[0] == seen[0]
        assert "worker 1 (pid" in (tmp_path / "server.log").read_text()
        family += psutil.Process(supervisor.pid).children(recursive=True)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            assert supervisor.wait(timeout=90) == 0
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
            log.close()
    deadline = time.monotonic() + 30
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {left}"

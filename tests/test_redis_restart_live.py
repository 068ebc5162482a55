"""Redis restarted in the middle of a handoff, with a real `callpilot run` on a private redis-server (AOF on):
a caller waits for an agent (Ann is away), Redis is killed with SIGKILL and started again on the same folder
three seconds later; the caller is still in the queue, and when Ann becomes available she gets the call and
the caller hears her. Nobody is left on hold for ever, nothing is offered twice."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import redis

from tests.live_processes import CLI, RATE, ROOT, Desk, loud_ms, servers, wait_for
from tests.redis_fixtures import PrivateRedis, private_redis  # noqa: F401  (the `private` fixture)
from voice_gateway.testing import TwilioCaller, espeak_wav, read_pcm


def test_a_waiting_caller_survives_a_redis_restart_and_reaches_the_agent(tmp_path: Path, private: PrivateRedis) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0", "CALLPILOT_REDIS_URL": private.url,
           "CALLPILOT_STATE_DIR": str(tmp_path / "var"), "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
           "CALLPILOT_HANDOFF": json.dumps({"queues": {"general": {"max_wait_s": 600}}})}  # agents: in Redis
    added = subprocess.run([*CLI, "agent", "add", "Ann", "--skills", "general"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    token = added.stdout.strip()
    voice = read_pcm(espeak_wav(tmp_path / "ann.wav", "Hello, this is Ann. How can I help you today?", 16000,
                                pad_s=0.5))
    ask = read_pcm(espeak_wav(tmp_path / "ask.wav", "I want to talk to a human agent please", RATE, pad_s=0.0))
    desk: Desk | None = None
    with servers(tmp_path, {"server": env}) as started:
        server = started["server"]
        desk = Desk(f"{server.ws}/agent/ws", token, voice)
        desk.away_first = True
        try:
            desk.start()
            wait_for(lambda: any(m.get("status") == "away" for m in desk.of("status_changed")), 10, "Ann away")
            caller = TwilioCaller(f"{server.ws}/media/twilio", ask, speak_at_s=6.0, limit_s=120.0)
            caller.start()
            r = redis.Redis.from_url(private.url, decode_responses=True)
            wait_for(lambda: any(r.zcard(k) for k in r.keys("callpilot:handoff:queue:*:waiting")), 60,
                     "the caller queued")
            private.kill()  # SIGKILL: only what the AOF holds survives
            time.sleep(3)
            private.start()
            r = redis.Redis.from_url(private.url, decode_responses=True)
            assert any(r.zcard(k) for k in r.keys("callpilot:handoff:queue:*:waiting")), "the queue entry was lost"
            time.sleep(5)  # the server finds Redis again
            desk.status = "available"
            wait_for(lambda: desk.call_id is not None, 60, "the call to reach Ann after the restart")
            joined = len(caller.heard)
            time.sleep(7)  # Ann talks (a loaded machine delivers less of it in time)
            heard = bytes(caller.heard[joined:])
            desk.hang_up.set()
            wait_for(lambda: desk.of("call_ended"), 15, "the call to end")
            caller.join(timeout=20)
        finally:
            desk.stop.set()
            if desk.is_alive():
                desk.join(timeout=10)
    assert desk.error is None, desk.error
    assert caller.error is None and caller.closed_by_server
    assert len(desk.of("offer")) == 1, desk.of("offer")  # offered once, not again after the restart
    assert loud_ms(heard) > 1000, "the caller did not hear Ann"  # of ~4 s of speech in 7 s

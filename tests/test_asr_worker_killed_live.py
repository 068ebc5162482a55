"""An ASR worker process killed with SIGKILL in the middle of a real call (`callpilot run`, Twilio media stream):
the caller is speaking when it dies; the server starts new workers, decodes again, and the bot answers the
question as if nothing happened. `/health/voice` and `/metrics` count the restart; no worker is left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import psutil

from tests.live_processes import RATE, loud_ms, servers, wait_for
from voice_gateway.testing import TwilioCaller, espeak_wav, read_pcm


def asr_workers(server: psutil.Process) -> list[psutil.Process]:
    return [p for p in server.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


def test_an_asr_worker_killed_while_the_caller_speaks_is_replaced_and_the_bot_still_answers(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0",
           "CALLPILOT_STATE_DIR": str(tmp_path / "var"), "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
           "CALLPILOT_RECORDINGS_DIR": str(tmp_path / "rec")}
    env.pop("CALLPILOT_REDIS_URL", None)
    env.pop("CALLPILOT_DATABASE_URL", None)
    question = read_pcm(espeak_wav(tmp_path / "hours.wav", "What are your opening hours?", RATE, pad_s=0.0))
    with servers(tmp_path, {"server": env}) as started:
        server = started["server"]
        process = psutil.Process(server.process.pid)
        workers = asr_workers(process)
        assert workers, "the server runs no ASR worker process"
        caller = TwilioCaller(f"{server.ws}/media/twilio", question, speak_at_s=6.0, limit_s=10.0)
        caller.start()
        time.sleep(6.5)  # the caller is half-way through the question
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        psutil.wait_procs(workers, timeout=10)
        caller.join(timeout=60)
        voice = httpx.get(f"{server.http}/health/voice", timeout=5).json()
        assert voice["status"] == "ready" and voice["asr_worker_restarts"] >= 1
        scraped = httpx.get(f"{server.http}/metrics", timeout=5).text
        restarts = re.search(r"^callpilot_asr_worker_restarts ([0-9.]+)$", scraped, re.M)
        assert restarts and float(restarts.group(1)) >= 1
        replaced = asr_workers(process)
        assert replaced and not {w.pid for w in replaced} & {w.pid for w in workers}
        wait_for(lambda: any(json.loads(line)["event"] == "ended"
                             for line in (tmp_path / "calls.jsonl").read_text().splitlines()), 20, "the call's end")
    assert caller.error is None
    events = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    heard = [e for e in events if e["event"] == "turn" and e.get("speaker") == "caller"]
    assert [e.get("intent") for e in heard] == ["opening_hours"], heard  # understood, not sent to the keypad menu
    answers = [e for e in events if e["event"] == "turn" and e.get("speaker") == "bot"]
    assert any("open" in str(e.get("planned") or e.get("text")).lower() for e in answers[1:]), answers
    assert loud_ms(bytes(caller.heard[int(8 * RATE * 2):])) > 1000, "the caller heard no answer"
    assert not [w for w in workers + replaced if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]

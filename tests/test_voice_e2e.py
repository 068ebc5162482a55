"""End to end: `callpilot run` on a free port, `callpilot call` dialing it over the real Twilio websocket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import httpx

from tests.voice_helpers import free_port, stop_process
from voice_gateway.audio import resample_pcm16
from voice_gateway.call_log import LifecycleKind, read_call_log
from voice_gateway.tts import HibariTts

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]


def _caller_wav(path: Path, text: str) -> Path:
    async def render() -> bytes:
        chunks = [chunk async for chunk in HibariTts().synthesize(text)]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, 8000)

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(16000 * 6) + asyncio.run(render()))  # 6 s of silence: the greeting plays first
    return path


def test_simulated_caller_checks_an_order_over_twilio(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CALLPILOT_AUDIOSOCKET_PORT": "0",
        "CALLPILOT_RECORD_CALLS": "true",
        "CALLPILOT_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
    }
    wav = _caller_wav(tmp_path / "caller.wav", "where is my order 48215")
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            time.sleep(0.5)
        twiml = httpx.post(f"http://127.0.0.1:{port}/twilio/voice", content="From=%2B15551230000&CallSid=CA1",
                           headers={"content-type": "application/x-www-form-urlencoded"})
        assert f"ws://127.0.0.1:{port}/media/twilio" in twiml.text and "+15551230000" in twiml.text
        assert httpx.get(f"http://127.0.0.1:{port}/phone").text.count("phone-worklet.js") >= 1
        done = subprocess.run(
            [*CLI, "call", "--wav", str(wav), "--fast", "--url", f"http://127.0.0.1:{port}",
             "--out", str(tmp_path / "bot.wav")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )
        assert done.returncode == 0, done.stderr
        printed = done.stdout.lower()
        assert "caller:" in printed and "bot:" in printed, done.stdout
        assert "48215" in printed.replace(",", "") or "warehouse" in printed, done.stdout
    finally:
        stop_process(server)
    events = read_call_log(tmp_path / "calls.jsonl")
    kinds = [e.kind for e in events]
    assert kinds[0] is LifecycleKind.STARTED and kinds[-1] is LifecycleKind.ENDED, kinds
    # The file is redacted as written (the records writer got the number itself).
    assert events[0].data["caller"] == "[phone]" and events[0].data["transport"] == "twilio"
    assert "+15550100000" not in (tmp_path / "calls.jsonl").read_text(encoding="utf-8")
    recording = Path(str(events[-1].data["recording"]))
    with wave.open(str(recording)) as wav_in:
        assert wav_in.getnchannels() == 2

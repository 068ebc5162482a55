"""What the end-to-end voice tests share: a real `callpilot run` on free ports, and synthesised caller speech."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class VoiceServer:
    """A running server: its base URL, AudioSocket port, call log and the environment to call it with."""

    url: str
    port: int
    audiosocket_port: int
    call_log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None  # `callpilot run` itself (to stop it as an operator does)


@contextlib.contextmanager
def voice_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[VoiceServer]:
    """`callpilot run` on free ports (with `extra_env` settings), returned once its voice models are ready
    (`/health/voice`)."""
    port, audiosocket_port = free_port(), free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CALLPILOT_PORT": str(port),
        "CALLPILOT_AUDIOSOCKET_PORT": str(audiosocket_port),
        "CALLPILOT_CALL_LOG": str(tmp / "calls.jsonl"),
        "CALLPILOT_RESULTS_DIR": str(tmp / "results"),
        "CALLPILOT_STATE_DIR": str(tmp / "state"),  # the call records' SQLite file, the agent directory
        **(extra_env or {}),
    }
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (tmp / "server.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the voice models did not load in 240 s"
            try:
                if httpx.get(f"{url}/health/voice", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        _wait_for_port(audiosocket_port, deadline)
        yield VoiceServer(url, port, audiosocket_port, tmp / "calls.jsonl", env, server)
    finally:
        stop_process(server)
        log.close()


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """Stop a server the way an operator does (SIGTERM, it shuts down cleanly), killed if it has not exited in
    `timeout_s`: a test leaves no process behind (its ASR workers follow it, see `asr/process_pool.py`)."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def _wait_for_port(port: int, deadline: float) -> None:
    """The AudioSocket listener starts just after the models are ready."""
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on AudioSocket port {port}"
        time.sleep(0.1)


def speech(text: str, rate: int) -> bytes:
    """`text` spoken by the offline voice, as PCM16 mono at `rate`."""
    from voice_gateway.audio import resample_pcm16
    from voice_gateway.tts import HibariTts  # imported here: the tests that only want a free port stay light

    async def render() -> bytes:
        chunks = [chunk async for chunk in HibariTts().synthesize(text)]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, rate)

    return asyncio.run(render())


def write_wav(path: Path, pcm16: bytes, rate: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm16)
    return path


def silence(seconds: float, rate: int) -> bytes:
    return bytes(int(seconds * rate) * 2)

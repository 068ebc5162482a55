"""Helpers for tests that drive real `callpilot run` processes and browsers: starting servers (their output kept
for the failure message), their environment, agents and supervisor keys made with the CLI, an agent's desk
without a browser, signing in with one, waiting for a condition, how loud a recording is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.voice_helpers import free_port, stop_process
from voice_gateway.audio import FrameBuffer, rms

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]
RATE = 8000
FRAME = RATE // 50 * 2
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream"]


def transcribe_8k(pcm: bytes) -> str:
    from voice_gateway.asr import AsrFinal, AsrSettings, TurnListener, load_engine
    from voice_gateway.vad import SileroVad, VoiceActivityDetector

    listener = TurnListener(VoiceActivityDetector.create(SileroVad(), RATE), load_engine(AsrSettings()).stream(RATE))
    results = listener.accept(pcm + bytes(RATE * 2)) + listener.flush()
    return " ".join(r.text for r in results if isinstance(r, AsrFinal)).lower()


def wait_healthy(base: str, server: subprocess.Popen[bytes], *, voice: bool = True) -> None:
    """Until `/health` (and, with `voice`, `/health/voice`) answers 200; the server's output if it exits."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{base}/health", timeout=2).status_code == 200
            if ready and (not voice or httpx.get(f"{base}/health/voice", timeout=2).status_code == 200):
                return
        except httpx.HTTPError:
            pass
        assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
        time.sleep(0.5)
    raise AssertionError("the server did not become healthy")


def server_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CALLPILOT_AUDIOSOCKET_PORT": "0",
        "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
        "CALLPILOT_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "CALLPILOT_STATE_DIR": str(tmp_path / "var"),
        "CALLPILOT_HANDOFF": json.dumps({"agents_file": str(tmp_path / "agents.json")}),
    }
    env.pop("CALLPILOT_REDIS_URL", None)  # the server's own in-process Redis
    return env


def add_agent(env: dict[str, str]) -> str:
    """`callpilot agent add` as a newcomer runs it; returns the token it prints."""
    added = subprocess.run([*CLI, "agent", "add", "Alice", "--skills", "orders,returns,tech,billing,general"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cpa_"), added.stdout  # the token alone, like an API key
    return lines[0]


def add_supervisor_key(env: dict[str, str]) -> str:
    """`callpilot apikey create --role supervisor`, as the README says; returns the key it prints."""
    created = subprocess.run([*CLI, "apikey", "create", "--role", "supervisor", "--name", "floor manager"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def sign_in(page: Any, base: str, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/agent")
    page.fill("#token", token)
    page.click("#signin-button")
    expect(page.locator("#desk")).to_be_visible(timeout=20_000)
    page.click("#available")
    expect(page.locator("#status")).to_have_text("available", timeout=10_000)




class Desk(threading.Thread):
    """Ann's desk on process B without a browser: accepts every offer, speaks `voice` in a loop while connected,
    hangs up and wraps up when the test says so; keeps every message."""

    def __init__(self, url: str, token: str, voice: bytes) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.voice = url, token, voice
        self.messages: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self.hang_up = threading.Event()
        self.wrap_up = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.away_first = False  # sign in away (set `status` later to change it)
        self.status: str | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        with connect(self.url) as ws:
            ws.send(json.dumps({"type": "hello", "token": self.token}))
            ws.send(json.dumps({"type": "status", "status": "away" if self.away_first else "available"}))
            at, pinged = 0, time.monotonic()
            while not self.stop.is_set():
                try:
                    message = ws.recv(timeout=0.02)
                except TimeoutError:
                    message = None
                if self.status is not None:
                    ws.send(json.dumps({"type": "status", "status": self.status}))
                    self.status = None
                if isinstance(message, str):
                    data = json.loads(message)
                    self.messages.append(data)
                    if data["type"] == "offer":
                        ws.send(json.dumps({"type": "accept", "offer_id": data["offer_id"]}))
                    elif data["type"] == "connected":
                        self.call_id = data["call_id"]
                    elif data["type"] == "call_ended":
                        self.call_id = None
                if self.call_id is not None:  # Ann talks: one 20 ms frame per 20 ms
                    ws.send(self.voice[at:at + 640].ljust(640, b"\0"))
                    at = (at + 640) % len(self.voice)
                if self.hang_up.is_set() and self.call_id is not None:
                    self.hang_up.clear()
                    ws.send(json.dumps({"type": "hang_up"}))
                if self.wrap_up.is_set() and self.call_id is None:
                    self.wrap_up.clear()
                    ws.send(json.dumps({"type": "wrap_up", "disposition": "resolved", "notes": "multi-process"}))
                if time.monotonic() - pinged > 5:
                    ws.send(json.dumps({"type": "ping"}))
                    pinged = time.monotonic()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def loud_ms(pcm: bytes) -> int:
    return 20 * sum(rms(frame) > 300 for frame in FrameBuffer(FRAME).push(pcm))




@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextmanager
def servers(tmp_path: Path, envs: dict[str, dict[str, str]]) -> Iterator[dict[str, Server]]:
    """`callpilot run` per name (with its env), each on a free port and healthy (voice too) before the block;
    their output goes to `<name>.log`, whose tail is added to an error raised in the block; all stopped after."""
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in envs}
    started: dict[str, Server] = {}
    try:
        for name, env in envs.items():
            port = free_port()
            started[name] = Server(port, subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                                                          stdout=logs[name], stderr=subprocess.STDOUT))
        for server in started.values():
            wait_healthy(server.http, server.process)
        yield started
    except BaseException as exc:
        exc.add_note("\n".join(f"--- {name}.log (last lines) ---\n{_tail(tmp_path / f'{name}.log')}"
                                for name in envs))
        raise
    finally:
        for server in started.values():
            if server.process.poll() is None:
                stop_process(server.process)
        for log in logs.values():
            log.close()


@contextmanager
def logged_server(tmp_path: Path, port: int, env: dict[str, str], *, voice: bool = True,
                  cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """`callpilot run` on `port`, healthy (voice too, with `voice`) before the block; its output goes to
    `server.log` (a pipe nobody reads stalls a server once it fills), whose tail is added to an error raised in
    the block; stopped after."""
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=cwd, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", server, voice=voice)
            yield server
        except BaseException as exc:
            exc.add_note(f"--- server.log (last lines) ---\n{_tail(log_path)}")
            raise
        finally:
            if server.poll() is None:
                stop_process(server)


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join([line for line in text if "GET /health" not in line][-lines:])

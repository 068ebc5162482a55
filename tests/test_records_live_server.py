"""The operations "done when", for real: `callpilot run` on a free port, two calls placed with `callpilot call`
(espeak-ng speech), an admin key from the command line; `/api/v1/calls`, the transcript, `/api/v1/kpis`,
`/dashboard` and `/metrics` show the calls, and the README's curl recipes work as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.voice_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]
CALLERS = {"order": "Where is my order, four eight two one five?", "human": "I want to talk to a human please."}


def _espeak_wav(path: Path, text: str, *, lead_s: int = 6) -> Path:
    """espeak-ng's voice after `lead_s` of silence (the greeting plays first)."""
    spoken = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(spoken), text], check=True, timeout=60)
    with wave.open(str(spoken)) as src:
        rate, frames = src.getframerate(), src.readframes(src.getnframes())
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(rate * 2 * lead_s) + frames)
    return path


class Server:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0",
                    "CALLPILOT_DATA_DIR": str(ROOT / "nlu_data"), "CALLPILOT_MODELS_DIR": str(ROOT / "models"),
                    "CALLPILOT_STATE_DIR": str(folder / "state"), "CALLPILOT_RESULTS_DIR": str(folder / "results"),
                    "CALLPILOT_CALL_LOG": str(folder / "results" / "calls.jsonl"),
                    "CALLPILOT_RECORD_CALLS": "true"}  # recordings_dir stays relative: results/recordings
        self.process = subprocess.Popen([*CLI, "run", "--port", str(self.port)], cwd=folder, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/health/voice", timeout=2).json().get("status") == "ready":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"the server did not get ready:\n{self.output()}")

    def cli(self, *args: str, timeout: float = 240) -> str:
        done = subprocess.run([*CLI, *args], cwd=self.folder, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def output(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stdout.read().decode() if self.process.stdout else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    running = Server(tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_simulated_calls_show_up_in_the_api_and_on_the_dashboard(server: Server, tmp_path: Path) -> None:
    for name, text in CALLERS.items():
        wav = _espeak_wav(tmp_path / f"{name}.wav", text, lead_s=0)  # --wait-for-greeting: no silence needed
        # a demo customer's number (its screen pop), speaking only once the greeting is over (in real time: a
        # --fast call's timing is at the mercy of a busy machine)
        printed = server.cli("call", "--wav", str(wav), "--url", server.url, "--wait-for-greeting",
                             *(("--caller-number", "+16175550142") if name == "order" else ()))
        call_id = printed.splitlines()[0].removeprefix("call ")
        lines = printed.splitlines()
        caller_at = min(float(line.split("-")[0]) for line in lines if " caller: " in line)
        # what was heard of the bot (ASR of its audio): the whole greeting before the caller spoke
        heard = [line for line in lines if " heard: " in line and line.split("heard: ")[1].strip()]
        assert heard and float(heard[0].split("-")[0]) < caller_at, printed
        assert "barge-in" not in printed, printed  # the caller waited for the greeting to end
        # and its own words, from the server's call log
        assert any(line.strip().startswith("bot: ") and "Brightline" in line for line in lines), printed
        saved = server.folder / "results" / "calls" / f"{call_id}-bot.wav"  # in the results folder, not the cwd
        assert saved.stat().st_size > 44 and f"saved to {saved}" in printed, printed
    assert not list(server.folder.glob("*bot*.wav"))  # nothing in the folder the command ran in
    key = server.cli("apikey", "create", "--role", "admin", "--name", "ops").splitlines()[0].strip()
    assert key.startswith("cp_")
    auth = {"Authorization": f"Bearer {key}"}

    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as api:
        deadline = time.monotonic() + 30  # the records writer is a background thread
        while (page := api.get("/api/v1/calls").json())["total"] < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert page["total"] == 2, page
        calls = {c["intents"][-1] if c["intents"] else None: c for c in page["items"]}
        assert all(c["status"] in ("completed", "abandoned") and c["transport"] == "twilio" for c in page["items"])
        assert all(c["language"] == "en" and c["recording_available"] for c in page["items"])
        [demo] = [c for c in page["items"] if c["caller_number"] == "+16175550142"]  # --caller-number
        assert demo["customer_id"] == "C001"  # the demo customer the agent's screen pop would show
        human = calls["talk_to_human"]
        assert human["contained"] is False and human["queue"] and human["handoff_reason"] == "caller_asked"
        assert [s["intent"] for s in human["intent_scores"]] == human["intents"]

        lines = api.get(f"/api/v1/calls/{human['call_id']}/transcript").json()["lines"]
        assert any(line["speaker"] == "caller" and "human" in line["text"].lower() for line in lines), lines
        recording = api.get(f"/api/v1/calls/{human['call_id']}/recording")
        assert recording.status_code == 200 and recording.content[:4] == b"RIFF"

        kpis = api.get("/api/v1/kpis").json()["kpis"]
        assert kpis["calls"] == 2 and kpis["handoff_rate"] == 0.5, kpis

        page_html = api.get("/dashboard")
        assert page_html.status_code == 200 and "Calls" in page_html.text and "talk_to_human" in page_html.text
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'callpilot_calls_started_total{transport="twilio"} 2.0' in metrics

        # The README's recipes (Call records API), as written there.
        listed = api.get("/api/v1/calls?contained=false&limit=20").json()
        assert [c["call_id"] for c in listed["items"]] == [human["call_id"]]
        created = api.post("/api/v1/calls", json={"customer_id": "C001", "phone_number": "+16175550142",
                                                 "call_duration": 184, "status": "completed"})
        assert created.status_code == 201, created.text
        assert api.get("/api/v1/calls").json()["total"] == 3
        assert httpx.get(f"{server.url}/api/v1/calls").status_code == 401

    # Recordings were written under the server's folder and stored with absolute paths.
    recordings = sorted((tmp_path / "results" / "recordings").glob("*.wav"))
    assert len(recordings) == 2

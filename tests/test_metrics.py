"""Prometheus /metrics: per-app registries, the pipeline observer, and a real call scraped afterwards."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.brains import build_dialogue
from callpilot.ops.metrics import CallMetrics
from callpilot.ops.observer import OpsObserver
from callpilot.ops.webhooks import Backoff, Subscription, WebhookDispatcher
from callpilot.settings import Settings
from tests.webhook_receiver import SECRET, Receiver
from voice_gateway.audio import resample_pcm16
from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline import CallPipeline, VoiceServices, load_services
from voice_gateway.simulated_caller import CallerScript, InMemoryTwilioLine, run_caller
from voice_gateway.transports import CallConnection

ROOT = Path(__file__).resolve().parent.parent


def scrape(app: FastAPI) -> str:
    async def get() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.get("/metrics")
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
            return response.text

    return asyncio.run(get())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample line, e.g. sample(text, "callpilot_calls_started_total", transport="twilio")."""
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{label_text}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.M)
    assert match, f"no sample {name} {labels} in:\n{text}"
    return float(match.group(1))


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    one = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl"))
    two = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl"))  # same names: no clash
    one.state.ops.observer.on_call_started("c1", "twilio", "+15550100000")
    assert sample(scrape(one), "callpilot_calls_in_progress") == 1.0
    assert sample(scrape(two), "callpilot_calls_in_progress") == 0.0


def test_observer_events_become_metrics(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl"))
    observer = app.state.ops.observer
    observer.on_call_started("c1", "twilio", "+15550100000")
    observer.on_call_started("c2", "softphone", "")
    observer.on_turn_gap("c1", 640.0)  # 0.64 s: in the 0.75 s bucket, not in the 0.5 s one
    observer.on_turn_gap("c1", 1900.0)
    observer.on_asr_final("c1", 180.0)
    observer.on_tts_first_audio("c1", 420.0)
    observer.on_handoff("c2", "orders", "asked")
    observer.on_error("c2", "tts")
    observer.on_call_ended("c2", "hangup")
    text = scrape(app)
    assert sample(text, "callpilot_calls_in_progress") == 1.0
    assert sample(text, "callpilot_calls_started_total", transport="twilio") == 1.0
    assert sample(text, "callpilot_calls_started_total", transport="softphone") == 1.0
    assert sample(text, "callpilot_calls_ended_total", reason="hangup") == 1.0
    assert sample(text, "callpilot_turn_gap_seconds_count") == 2.0
    assert sample(text, "callpilot_turn_gap_seconds_sum") == pytest.approx(2.54)
    assert sample(text, "callpilot_turn_gap_seconds_bucket", le="0.5") == 0.0
    assert sample(text, "callpilot_turn_gap_seconds_bucket", le="0.75") == 1.0
    assert sample(text, "callpilot_turn_gap_seconds_bucket", le="2.0") == 2.0
    assert sample(text, "callpilot_asr_latency_seconds_sum") == pytest.approx(0.18)
    assert sample(text, "callpilot_tts_first_audio_seconds_count") == 1.0
    assert sample(text, "callpilot_handoffs_total", skill="orders") == 1.0
    assert sample(text, "callpilot_errors_total", where="tts") == 1.0
    assert "# HELP callpilot_queue_waiting_calls" in text  # no queue service: the family is there, empty


def test_the_observer_sends_call_webhooks_and_never_raises() -> None:
    async def scenario() -> list[str]:
        with Receiver(SECRET) as receiver:
            hooks = WebhookDispatcher([Subscription(receiver.url, SECRET)], backoff=Backoff(0.01, 0.05, 3))
            await hooks.start()
            observer = OpsObserver(CallMetrics(), hooks)
            observer.on_call_started("c1", "twilio", "+15550100000")
            observer.on_handoff("c1", "orders", "asked")
            observer.on_call_ended("c1", "hangup")
            await hooks.drain()
            await hooks.stop()
        assert all(r["valid"] for r in receiver.posts)
        return [str(r["event"]) for r in receiver.posts]

    assert sorted(asyncio.run(scenario())) == ["call.ended", "call.started", "handoff.requested"]

    class Broken(CallMetrics):
        def on_call_started(self, call_id: str, transport: str, caller: str) -> None:
            raise RuntimeError("boom")

    OpsObserver(Broken()).on_call_started("c1", "twilio", "")  # logged, not raised into the call


# A real call through the pipeline, with the app's observer installed.


@pytest.fixture(scope="module")
def services(nlu_engine: NLUEngine) -> Iterator[VoiceServices]:
    dialogue = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    loaded = load_services(dialogue, tts_engine="hibari")
    yield loaded
    loaded.close()


def test_a_real_call_shows_up_in_the_scrape(services: VoiceServices, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl"))
    voice = dataclasses.replace(services, call_log=CallLog(None), observer=app.state.ops.observer)

    async def render(text: str) -> bytes:
        chunks = [chunk async for chunk in voice.tts.synthesize(text)]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, 8000)

    audio = bytes(16000 * 6) + asyncio.run(render("where is my order 48215"))

    def new_call(line: CallConnection) -> CallPipeline:
        return CallPipeline(line, voice)

    async def go() -> None:
        await run_caller(InMemoryTwilioLine(new_call), CallerScript(audio, realtime=False, speed=4.0))

    asyncio.run(go())
    (asked,) = [e for e in voice.call_log.events if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]
    assert asked.data["intent"] == "check_order_status"  # logged with the caller's turn: the records' hot topics
    text = scrape(app)
    assert sample(text, "callpilot_calls_started_total", transport="twilio") == 1.0
    assert sum(float(v) for v in re.findall(r"^callpilot_calls_ended_total\{.*\} (\S+)$", text, re.M)) == 1.0
    assert sample(text, "callpilot_calls_in_progress") == 0.0
    assert sample(text, "callpilot_turn_gap_seconds_count") >= 1  # the caller asked, the bot answered
    assert sample(text, "callpilot_asr_latency_seconds_count") >= 1
    assert sample(text, "callpilot_tts_first_audio_seconds_count") >= 2  # the greeting and the answer


def test_the_records_writers_backlog_is_a_metric() -> None:
    from types import SimpleNamespace

    from callpilot.ops.metrics import CallMetrics
    from callpilot.records.writer import WriterStats

    metrics = CallMetrics()
    metrics.update_records(SimpleNamespace(pending=3, stats=WriterStats(written=5, retries=2, spilled=1)))
    text = metrics.render().decode()
    assert "callpilot_records_pending_events 3.0" in text
    assert 'callpilot_records_events{outcome="written"} 5.0' in text
    assert 'callpilot_records_events{outcome="retries"} 2.0' in text and 'outcome="dropped"} 0.0' in text

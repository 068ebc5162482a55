"""`/health/voice` and `/health`: the voice models are loading, ready (with the engines' names) or failed (with the
error); every ASR setting reaches the engine `callpilot run` builds."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.settings import Settings, SettingsError
from callpilot.voice import VoiceRuntime, asr_settings
from voice_gateway.asr import AsrFinal, AsrSettings
from voice_gateway.asr.vosk_engine import VoskEngine, korean_test_model_dir
from voice_gateway.testing import RATE, espeak, pause, phone_audio

ROOT = Path(__file__).resolve().parent.parent


def settings(**overrides: object) -> Settings:
    return Settings.load(None, {}, data_dir=ROOT / "nlu_data", audiosocket_port=0, **overrides)


def wait_for_voice(client: TestClient) -> dict[str, object]:
    """Poll until the background load has finished one way or the other (models take seconds)."""
    deadline = time.monotonic() + 180
    while True:
        answer = client.get("/health/voice")
        body: dict[str, object] = answer.json()
        if body["status"] != "loading" or time.monotonic() > deadline:
            assert answer.status_code == (200 if body["status"] == "ready" else 503)
            return body
        assert answer.status_code == 503
        time.sleep(0.2)


def test_before_loading_the_voice_is_reported_as_loading(nlu_engine: NLUEngine) -> None:
    runtime = VoiceRuntime(settings(), nlu_engine)
    assert runtime.status() == {"status": "loading", "asr": "whisper-tiny.en", "tts": "hibari", "error": None,
                                "asr_worker_restarts": 0, "tts_cache_hits": 0, "tts_cache_misses": 0,
                                "tts_cache_bytes": 0, "sip": None,
                                "divert": {"backup_number": None, "diverting": False, "reason": None,
                                           "switch": False, "diverted_calls": 0}}


def test_loaded_voice_is_ready_with_its_engines_and_health_waits_for_it(nlu_engine: NLUEngine) -> None:
    with TestClient(create_app(settings(), engine=nlu_engine)) as client:
        loading = client.get("/health")  # the models take seconds: the first answer comes while they load
        assert loading.status_code == 503
        assert loading.json()["status"] == "loading" and loading.json()["not_ready"] == ["voice"]
        body = wait_for_voice(client)
        ready = client.get("/health")
    assert {k: v for k, v in body.items() if not k.startswith("tts_cache") and k != "divert"} == {
        "status": "ready", "asr": "whisper-tiny.en", "tts": "hibari", "error": None, "asr_worker_restarts": 0,
        "sip": None, "worker": None, "pid": os.getpid()}  # SIP off; one process
    assert body["divert"]["backup_number"] is None and not body["divert"]["diverting"]  # no backup number
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok" and ready.json()["not_ready"] == [] and ready.json()["voice"] == "ready"


def test_a_model_that_cannot_load_is_reported_as_failed_with_the_reason(nlu_engine: NLUEngine, tmp_path: Path) -> None:
    # The configured vosk folder holds no model: the voice fails, /health says so, the text channels keep working.
    with TestClient(create_app(settings(asr_engine="vosk", asr_vosk_model_dir=tmp_path), engine=nlu_engine)) as client:
        body = wait_for_voice(client)
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "error" and health.json()["not_ready"] == ["voice"]
        assert "is not a vosk model folder" in health.json()["detail"]
        chat = client.post("/webhooks/rest/webhook", json={"sender": "t1", "message": "hello"})
        assert chat.status_code == 200 and chat.json()
    assert body["status"] == "failed" and body["asr"] == "vosk"
    assert f"{tmp_path} is not a vosk model folder" in str(body["error"])


def test_vosk_without_a_model_folder_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(SettingsError, match="CALLPILOT_ASR_VOSK_MODEL_DIR"):
        Settings.load(None, {"CALLPILOT_ASR_ENGINE": "vosk"})
    with pytest.raises(SettingsError, match="English only"):
        Settings.load(None, {"CALLPILOT_ASR_LANGUAGE": "zh"})  # whisper-tiny.en


def test_every_asr_setting_reaches_the_engine_settings(tmp_path: Path) -> None:
    chosen = Settings.load(None, {"CALLPILOT_ASR_ENGINE": "whisper-base", "CALLPILOT_ASR_LANGUAGE": "zh",
                                  "CALLPILOT_ASR_VOSK_MODEL_DIR": str(tmp_path), "CALLPILOT_ASR_CPU_THREADS": "3",
                                  "CALLPILOT_ASR_NUM_WORKERS": "4", "CALLPILOT_ASR_PROCESSES": "5"})
    assert asr_settings(chosen) == AsrSettings(engine="whisper-base", vosk_model_dir=tmp_path, language="zh",
                                               languages=("en", "zh"), cpu_threads=3, num_workers=4, processes=5)
    # A field added to AsrSettings needs its callpilot setting, or the server would silently drop it (the
    # recogniser's languages are the line's: `languages`).
    fields = {f"asr_{f.name}" if f.name != "languages" else f.name for f in dataclasses.fields(AsrSettings)}
    assert fields <= set(Settings.model_fields)


def test_callpilot_run_loads_and_decodes_with_the_configured_vosk_model(nlu_engine: NLUEngine) -> None:
    model_dir = korean_test_model_dir()
    environ = {"CALLPILOT_ASR_ENGINE": "vosk", "CALLPILOT_ASR_VOSK_MODEL_DIR": str(model_dir)}
    configured = Settings.load(None, environ, data_dir=ROOT / "nlu_data", audiosocket_port=0)
    app = create_app(configured, engine=nlu_engine)
    with TestClient(app) as client:
        body = wait_for_voice(client)
        assert body["status"] == "ready" and body["asr"] == "vosk", body
        services = app.state.voice.services
        assert isinstance(services.asr, VoskEngine) and services.asr.model_dir == model_dir
        stream = services.asr.stream(RATE)  # the engine every call of this server opens its stream on
        pcm = phone_audio(pause(300), espeak("안녕하세요", voice="ko"), pause(300))
        for offset in range(0, len(pcm), 320):
            stream.accept(pcm[offset : offset + 320])
        (final,) = stream.flush()
    assert isinstance(final, AsrFinal) and final.text.strip()


def test_a_server_stopped_while_the_models_load_leaves_no_worker_process(nlu_engine: NLUEngine) -> None:
    runtime = VoiceRuntime(settings(asr_processes=1), nlu_engine)

    async def stop_early() -> None:
        runtime.start_loading()
        await runtime.stop()  # SIGTERM seconds after start: the models are still loading
        assert await asyncio.to_thread(runtime.ready.wait, 300)

    asyncio.run(stop_early())
    assert runtime.services is None and runtime.error is None  # loaded, then closed at once
    workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []

"""`/health/voice`: the voice models are loading, ready (with the engines' names) or failed (with the error)."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.settings import Settings
from callpilot.voice import VoiceRuntime

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
    assert runtime.status() == {"status": "loading", "asr": "whisper-tiny.en", "tts": "hibari", "error": None}


def test_loaded_voice_is_ready_with_its_engines(nlu_engine: NLUEngine) -> None:
    with TestClient(create_app(settings(), engine=nlu_engine)) as client:
        body = wait_for_voice(client)
    assert body == {"status": "ready", "asr": "whisper-tiny.en", "tts": "hibari", "error": None}


def test_a_model_that_cannot_load_is_reported_as_failed_with_the_reason(nlu_engine: NLUEngine) -> None:
    # vosk needs a model folder nobody configured: the voice fails, the text channels keep working.
    with TestClient(create_app(settings(asr_engine="vosk"), engine=nlu_engine)) as client:
        body = wait_for_voice(client)
        assert client.get("/health").status_code == 200
        chat = client.post("/webhooks/rest/webhook", json={"sender": "t1", "message": "hello"})
        assert chat.status_code == 200 and chat.json()
    assert body["status"] == "failed" and body["asr"] == "vosk"
    assert "CALLPILOT_ASR_VOSK_MODEL_DIR" in str(body["error"])

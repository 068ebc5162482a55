"""The optional Rasa 3.6 brain: export of nlu_data/, and a real Rasa server trained from it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.rasa_brain.client import RasaClient, RasaUnavailable
from bot.rasa_brain.export import export
from bot.rasa_brain.project import FileKind, SourceFile, classify, plan_export
from bot.rasa_brain.server import RasaServer, find_python310
from tests.voice_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
# RASA_DATA lets a developer point the Rasa test at another data folder.
DATA_DIR = Path(os.environ.get("RASA_DATA", ROOT / "nlu_data"))
TEST_PROJECT = ROOT / "build" / "rasa_test_project"
RASA_VENV = Path(os.environ.get("RASA_VENV", ROOT / ".rasa-venv"))
ACTION_TOKEN = "rasa-test-action-token-5f1c2a"

DOMAIN = """\
version: "3.1"
intents: [greet, return_policy]
responses:
  utter_greet:
  - text: "Hello!"
"""
NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
"""
RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""
IVR = """\
version: "1"
menus:
  main: {prompt: "Press 1 for orders", options: {"1": orders}}
"""


# Export (no Rasa needed) ------------------------------------------------------------------


def test_classify_tells_rasa_data_domain_and_other_yaml_apart() -> None:
    assert classify(yaml.safe_load(NLU)) is FileKind.DATA
    assert classify(yaml.safe_load(RULES)) is FileKind.DATA
    assert classify(yaml.safe_load(DOMAIN)) is FileKind.DOMAIN
    assert classify(yaml.safe_load(IVR)) is FileKind.OTHER
    assert classify({"nlu": [], "menus": {}}) is FileKind.OTHER  # Rasa would reject `menus`
    assert classify({"version": "3.1"}) is FileKind.OTHER
    assert classify(["not", "a", "mapping"]) is FileKind.OTHER


def test_plan_skips_ivr_and_writes_config_endpoints_credentials() -> None:
    sources = [
        SourceFile("domain.yml", DOMAIN),
        SourceFile("nlu/chitchat.yml", NLU),
        SourceFile("rules.yml", RULES),
        SourceFile("ivr.yml", IVR),
    ]
    plan = plan_export(sources, action_url="http://127.0.0.1:9999/webhook", epochs=7)
    assert plan.skipped == ("ivr.yml",)
    assert not plan.has_stories
    assert plan.files["domain.yml"] == DOMAIN
    assert plan.files["data/nlu/chitchat.yml"] == NLU
    assert plan.files["data/rules.yml"] == RULES
    config = yaml.safe_load(plan.files["config.yml"])
    names = [c["name"] for c in config["pipeline"]]
    assert names[0] == "WhitespaceTokenizer" and "DIETClassifier" in names
    assert {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1} in (config["pipeline"])
    diet = next(c for c in config["pipeline"] if c["name"] == "DIETClassifier")
    assert diet["epochs"] == 7
    assert [p["name"] for p in config["policies"]] == ["MemoizationPolicy", "RulePolicy"]
    endpoints = yaml.safe_load(plan.files["endpoints.yml"])
    assert endpoints == {"action_endpoint": {"url": "http://127.0.0.1:9999/webhook"}}
    with_token = plan_export(sources, action_url="http://127.0.0.1:9999/webhook", action_token="t" * 32)
    assert yaml.safe_load(with_token.files["endpoints.yml"]) == {"action_endpoint": {
        "url": "http://127.0.0.1:9999/webhook", "token": "t" * 32, "token_name": "token"}}
    assert yaml.safe_load(plan.files["credentials.yml"]) == {"rest": None}


def test_stories_add_ted_and_split_domains_are_merged() -> None:
    stories = 'version: "3.1"\nstories:\n- story: s\n  steps:\n  - intent: greet\n'
    extra_domain = "responses:\n  utter_bye:\n  - text: Bye\nintents: [bye, greet]\n"
    plan = plan_export(
        [
            SourceFile("domain/a.yml", DOMAIN),
            SourceFile("domain/b.yml", extra_domain),
            SourceFile("stories.yml", stories),
        ]
    )
    assert plan.has_stories
    policies = [p["name"] for p in yaml.safe_load(plan.files["config.yml"])["policies"]]
    assert "TEDPolicy" in policies
    domain = yaml.safe_load(plan.files["domain.yml"])
    assert domain["intents"] == ["greet", "return_policy", "bye"]
    assert set(domain["responses"]) == {"utter_greet", "utter_bye"}


def test_export_writes_project_and_drops_stale_data(tmp_path: Path) -> None:
    data = tmp_path / "nlu_data"
    (data / "nlu").mkdir(parents=True)
    (data / "domain.yml").write_text(DOMAIN)
    (data / "nlu" / "chitchat.yml").write_text(NLU)
    (data / "ivr.yml").write_text(IVR)
    out = tmp_path / "project"
    export(data, out, action_token="a-long-action-token-0123456789")
    assert (out / "endpoints.yml").stat().st_mode & 0o777 == 0o600  # it holds the action token
    assert (out / "data" / "nlu" / "chitchat.yml").read_text() == NLU
    assert (out / "domain.yml").read_text() == DOMAIN
    assert not (out / "data" / "ivr.yml").exists()
    assert (out / "config.yml").is_file() and (out / "credentials.yml").is_file()
    (data / "nlu" / "chitchat.yml").unlink()
    (data / "nlu" / "more.yml").write_text(NLU)
    export(data, out)
    assert not (out / "data" / "nlu" / "chitchat.yml").exists()
    assert (out / "data" / "nlu" / "more.yml").is_file()


def test_export_without_domain_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(NLU)
    with pytest.raises(ValueError, match="no Rasa domain"):
        export(tmp_path, tmp_path / "out")


def test_fingerprint_follows_training_inputs_only(tmp_path: Path) -> None:
    data = tmp_path / "nlu_data"
    data.mkdir()
    (data / "domain.yml").write_text(DOMAIN)
    (data / "nlu.yml").write_text(NLU)
    out = tmp_path / "project"
    export(data, out)
    server = RasaServer(out, tmp_path / "venv")
    first = server.data_fingerprint()
    export(data, out, action_url="http://127.0.0.1:1/webhook")  # endpoints do not matter
    assert server.data_fingerprint() == first
    assert not server.is_trained()
    (data / "nlu.yml").write_text(NLU + "    - hello\n")
    export(data, out)
    assert server.data_fingerprint() != first


def test_find_python310_honours_env_and_pyenv(tmp_path: Path) -> None:
    for version in ("3.10.2", "3.10.13", "3.11.7"):
        python = tmp_path / "versions" / version / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.touch()
    env = {"PYENV_ROOT": str(tmp_path), "PATH": ""}
    assert find_python310(env) == tmp_path / "versions" / "3.10.13" / "bin" / "python"
    explicit = tmp_path / "versions" / "3.10.2" / "bin" / "python"
    assert find_python310({**env, "PYTHON310": str(explicit)}) == explicit
    assert find_python310({**env, "PYTHON310": str(tmp_path / "missing")}) is None
    assert find_python310({"PYENV_ROOT": str(tmp_path / "none"), "PATH": ""}) is None


def test_client_reports_a_server_that_is_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens

    async def ask() -> None:
        async with RasaClient(f"http://127.0.0.1:{port}", timeout=2) as client:
            await client.parse("hello")

    with pytest.raises(RasaUnavailable, match="unreachable"):
        asyncio.run(ask())


# A real Rasa server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def callpilot_port() -> int:
    """The port callpilot will serve its action-server webhook on (Rasa's endpoints point there)."""
    return free_port()


@pytest.fixture(scope="module")
def rasa_server(callpilot_port: int) -> Iterator[RasaServer]:
    """Build .rasa-venv and train on nlu_data/ with scripts/rasa.sh, then serve on a free port."""
    if find_python310() is None:
        pytest.skip("no Python 3.10 on this machine: the Rasa backend test needs one")
    env = {
        **os.environ,
        "CALLPILOT_ACTION_TOKEN": ACTION_TOKEN,  # written into endpoints.yml: Rasa sends it as ?token=
        "RASA_DATA": str(DATA_DIR),
        "RASA_PROJECT": str(TEST_PROJECT),
        "RASA_VENV": str(RASA_VENV),
        "RASA_ACTION_URL": f"http://127.0.0.1:{callpilot_port}/webhook",
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "rasa.sh"), "train"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/rasa.sh train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with RasaServer(TEST_PROJECT, RASA_VENV, free_port()) as server:
        yield server


def _ask(server: RasaServer, method: str, *args: str) -> Any:
    async def call() -> Any:
        async with RasaClient(server.url, timeout=60) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(call())


def _response_texts(name: str) -> set[str]:
    """Every text variant of a response in nlu_data's domain."""
    for path in sorted(DATA_DIR.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and "intents" in doc and name in (doc.get("responses") or {}):
            return {variant["text"] for variant in doc["responses"][name] if "text" in variant}
    raise AssertionError(f"{name} not in any domain file under {DATA_DIR}")


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        ("hello is this brightline", "greet", {}),
        ("what's your return policy", "return_policy", {}),
        ("where is my order 4123456", "check_order_status", {"order_number": "4123456"}),
        ("my fridge is leaking", "technical_fault", {"product": "refrigerator"}),
        ("can i speak to a real person please", "talk_to_human", {}),
        ("what are your opening hours on sunday", "opening_hours", {}),
    ],
)
def test_parse_gives_intent_and_entities(
    rasa_server: RasaServer, text: str, intent: str, entities: dict[str, str]
) -> None:
    result = _ask(rasa_server, "parse", text)
    assert result["intent"]["name"] == intent, result["intent_ranking"][:3]
    found = {e["entity"]: e["value"] for e in result["entities"]}
    assert {k: found.get(k) for k in entities} == entities, result["entities"]


@pytest.mark.rasa
def test_rest_webhook_answers_greeting_and_return_policy(rasa_server: RasaServer) -> None:
    greeting = _ask(rasa_server, "send", "caller-1", "hi there")
    assert greeting and greeting[0]["text"] in _response_texts("utter_greet")
    assert greeting[0]["recipient_id"] == "caller-1"
    policy = _ask(rasa_server, "send", "caller-1", "what is your return policy")
    assert policy and policy[0]["text"] in _response_texts("utter_return_policy")
    tracker = _ask(rasa_server, "tracker", "caller-1")
    assert tracker["latest_message"]["intent"]["name"] == "return_policy"


@pytest.mark.rasa
def test_status_and_bad_answers(rasa_server: RasaServer) -> None:
    assert _ask(rasa_server, "status")["model_file"].endswith(".tar.gz")

    async def wrong_prefix() -> None:
        async with RasaClient(f"{rasa_server.url}/not-rasa", timeout=10) as client:
            await client.parse("hello")

    with pytest.raises(RasaUnavailable, match="HTTP 404"):
        asyncio.run(wrong_prefix())


@pytest.fixture(scope="module")
def callpilot_on_rasa(rasa_server: RasaServer, callpilot_port: int) -> Iterator[str]:
    """callpilot run with brain: rasa, in front of the real Rasa server."""
    env = {**os.environ, "CALLPILOT_BRAIN": "rasa", "CALLPILOT_RASA_URL": rasa_server.url,
           "CALLPILOT_ACTION_TOKEN": ACTION_TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "callpilot", "run", "--port", str(callpilot_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{callpilot_port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.rasa
def test_rasa_brain_runs_callpilots_actions_with_real_data(callpilot_on_rasa: str) -> None:
    """callpilot's REST channel -> Rasa -> callpilot's /webhook (order lookup) -> the caller."""

    def say(text: str) -> str:
        answer = httpx.post(f"{callpilot_on_rasa}/webhooks/rest/webhook",
                            json={"sender": "rasa-e2e", "message": text}, timeout=120)
        assert answer.status_code == 200, answer.text
        return " ".join(m.get("text", "") for m in answer.json())

    assert say("hi there") in _response_texts("utter_greet")
    reply = say("where is my order 48215")
    # The order's real status comes from the demo back office, through callpilot's action server.
    assert "Order 48215 is currently shipped" in reply, reply
    # ... which Rasa reached with the exported token; nobody else gets in.
    forged = {"next_action": "action_cancel_order", "sender_id": "x", "tracker": {"sender_id": "x", "slots": {}}}
    assert httpx.post(f"{callpilot_on_rasa}/webhook", json=forged, timeout=10).status_code == 401
    assert httpx.post(f"{callpilot_on_rasa}/webhook?token=wrong", json=forged, timeout=10).status_code == 401


@pytest.mark.rasa
def test_a_voice_call_runs_on_the_rasa_brain(callpilot_on_rasa: str, rasa_server: RasaServer,
                                             nlu_engine: Any) -> None:
    """The voice pipeline's dialogue with `brain: rasa`: speech to the real Rasa server (its actions served by
    callpilot), keys and the menus by callpilot's engine, the call's transcript and handoff context kept."""
    from bot.dialogue.factory import build_engine
    from callpilot.rasa_voice import RasaDialogue

    engine = build_engine(DATA_DIR, nlu_engine)
    dialogue = RasaDialogue(engine, rasa_server.url, timeout=120)
    call = "rasa-voice-1"
    greeting = dialogue.start(call, "+16175550142", "voice")
    assert greeting.text in _response_texts("utter_greet")
    status = dialogue.handle_text(call, "where is my order 48215")
    assert "Order 48215 is currently shipped" in status.text, status
    assert status.debug.intent == "check_order_status" and status.debug.slots.get("order_number") == "48215"
    human = dialogue.handle_text(call, "can i speak to a real person please")
    assert human.handoff is not None, human
    assert human.handoff.caller_number == "+16175550142" and human.handoff.slots.get("order_number") == "48215"
    said = [t["text"] for t in human.handoff.transcript if t["role"] == "user"]
    assert said == ["where is my order 48215", "can i speak to a real person please"]
    assert "order 48215" in human.handoff.summary

    # Keys stay with callpilot: "0" in the menus is an agent, on either brain.
    keys_call = "rasa-voice-2"
    dialogue.start(keys_call, "+16175550142", "voice")
    assert dialogue.handle_dtmf(keys_call, "0").handoff is not None

    # A Rasa server that does not answer: the call goes on in the keypad menu, not silence.
    down = RasaDialogue(build_engine(DATA_DIR, nlu_engine), f"http://127.0.0.1:{free_port()}", timeout=2)
    down.start("rasa-voice-3", None, "voice")
    assert down.handle_text("rasa-voice-3", "where is my order 48215").ivr_active


@pytest.mark.rasa
def test_rasa_brain_turns_reach_the_trainers_inbox(rasa_server: RasaServer, tmp_path: Path, nlu_engine: Any) -> None:
    """The REST channel on `brain: rasa`: what Rasa's NLU made of each caller turn (from the tracker) lands in the
    trainer's inbox like the builtin brain's turns - a turn Rasa did not understand is there, a greeting is not."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from callpilot.app import create_app
    from callpilot.records.models import InboxItem
    from callpilot.settings import Settings

    settings = Settings.load(None, {}, data_dir=DATA_DIR, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl",
                             brain="rasa", rasa_url=rasa_server.url, action_token=ACTION_TOKEN, audiosocket_port=0)
    app = create_app(settings, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None  # the REST channel is the caller here
    unclear = "zorbly the purple tractor sings"
    with TestClient(app) as client:
        for sender, text in (("inbox-1", "hello there"), ("inbox-2", unclear)):
            reply = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
            assert reply.status_code == 200 and reply.json(), reply.text
        call_id = app.state.records.text.call_id_of("inbox-2")
        assert app.state.trainer.recorder.flush(30)
        reading = _ask(rasa_server, "tracker", "inbox-2")["latest_message"]["intent"]
        with app.state.database.session() as session:
            items = {item.text: item for item in session.scalars(select(InboxItem))}
    assert "hello there" not in items  # understood: not the trainer's work
    item = items[unclear]
    assert item.reason in ("fallback", "low_confidence"), item.reason
    assert item.predicted_intent == reading["name"] and item.confidence == pytest.approx(reading["confidence"], abs=1e-3)
    assert item.channel == "rest" and call_id is not None and item.call_id == call_id  # linked to its transcript

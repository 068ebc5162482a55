"""Shared fixtures: the demo NLU model, trained once per test session (or reused from models/); a session-end
check that no test left a child process running."""

from __future__ import annotations

import os
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TYPE_CHECKING

import hypothesis  # noqa: F401  (imported now, in the main thread: its plugin's late import at the end of the
import psutil  # run parsed source while test threads could, which Python 3.11.7's AST depth counter cannot bear)
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bot.nlu import NLUEngine, load_or_train

if TYPE_CHECKING:
    from bot.dialogue import DialogueEngine
    from voice_gateway.pipeline import VoiceServices

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def nlu_engine() -> NLUEngine:
    """The demo assistant's model, trained from nlu_data/ unless models/ already has it."""
    return load_or_train(ROOT / "nlu_data", ROOT / "models")


# Every process this session starts inherits the mark, so one that outlives its parent (an ASR worker of a
# server killed mid-test, re-parented to init) is still found.
SESSION_MARK = "CALLPILOT_TEST_SESSION"
os.environ[SESSION_MARK] = f"{os.getpid()}-{os.urandom(4).hex()}"


def _started_by_this_session(process: psutil.Process) -> bool:
    try:
        return process.environ().get(SESSION_MARK) == os.environ[SESSION_MARK]
    except psutil.Error:
        return False


def _leftover_processes() -> list[psutil.Process]:
    """Processes this test session started that still run once every test is done (a few seconds' grace for
    pools and servers that were told to stop). The session's own multiprocessing resource tracker is not one:
    it serves this interpreter and exits with it."""
    exempt = {os.getpid(), getattr(resource_tracker._resource_tracker, "_pid", None)}
    started = [p for p in psutil.process_iter() if p.pid not in exempt and _started_by_this_session(p)]
    _, alive = psutil.wait_procs(started, timeout=10)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests leave no process behind: fail the run if a process they started still runs at the end, and stop it."""
    leftovers = _leftover_processes()
    if not leftovers:
        return
    lines = []
    for child in leftovers:
        try:
            lines.append(f"  pid {child.pid}: {' '.join(child.cmdline())[:200]}")
            child.kill()
        except psutil.Error:
            continue
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "tests left processes running (now killed):\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The fast lane (`make test-fast`): tests that load the models, start a server, a browser, a SIP peer or Rasa are
# marked `slow` here, so no test has to remember its own mark; `make test` still runs them all.
SLOW_FIXTURES = frozenset({"nlu_engine", "private"})  # the models; a private redis-server (redis_fixtures.py)
SLOW_WORDS = ("voice_server(", "chromium", "baresip", "kamailio", "load_services(", "RasaServer", "Popen(",
              "callpilot\", \"run\"", "create_app(", "whisper", "TestClient(create_app", "servers(tmp_path")


def _slow_module(path: Path, cache: dict[Path, bool] = {}) -> bool:  # noqa: B006  (a per-session cache)
    if path not in cache:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        cache[path] = any(word in text for word in SLOW_WORDS)
    return cache[path]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or _slow_module(Path(str(item.fspath))):
            item.add_marker(pytest.mark.slow)


# The voice pipeline's models with the demo dialogue, once per module (the agent-leg tests).
@pytest.fixture(scope="module")
def models(nlu_engine: NLUEngine) -> Iterator[tuple[VoiceServices, DialogueEngine]]:
    from callpilot.brains import build_dialogue  # imported here: the fast lane's collection stays light
    from callpilot.settings import Settings
    from voice_gateway.pipeline import load_services

    engine = build_dialogue(Settings(data_dir=Path(__file__).resolve().parent.parent / "nlu_data"), nlu_engine)
    loaded = load_services(engine, tts_engine="hibari")
    yield loaded, engine
    loaded.close()

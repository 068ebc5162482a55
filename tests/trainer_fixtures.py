"""A server with the trainer's workbench on copies of nlu_data/ and of the trained model (tests may edit, train
and activate without touching the repository's)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from bot.nlu import NLUEngine
from bot.nlu.storage import set_active
from callpilot.app import create_app
from callpilot.records.apikeys import create_key
from callpilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Workbench:
    app: Any
    settings: Settings
    keys: dict[str, str]

    def auth(self, role: str = "trainer") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def workbench(tmp_path: Path, engine: NLUEngine, *, voice: bool = False, **values: Any) -> Workbench:
    """With `voice`, the voice models load too (a phone caller can call in); else the REST channel is the caller."""
    data, models = tmp_path / "nlu_data", tmp_path / "models"
    shutil.copytree(ROOT / "nlu_data", data)
    models.mkdir()
    shutil.copytree(ROOT / "models" / engine.model_id, models / engine.model_id)
    set_active(models, engine.model_id)
    settings = Settings.load(None, {}, data_dir=data, models_dir=models, state_dir=tmp_path / "var",
                             audiosocket_port=0, call_log=tmp_path / "calls.jsonl",
                             held_out_data=ROOT / "held_out/nlu.yml",
                             conversation_tests_dir=ROOT / "tests/conversations", **values)
    app = create_app(settings, engine=engine)
    if not voice:
        app.state.voice.start_loading = lambda: None  # no ASR/TTS here: the REST channel is the caller
    app.state.database.upgrade()
    with app.state.database.session() as session:
        keys = {role: create_key(session, role, role, agent_id="ann" if role == "agent" else None)
                for role in ("trainer", "agent", "supervisor", "admin")}
    return Workbench(app, settings, keys)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app in a real uvicorn on a free port (its lifespan runs: records, inbox, and the voice if it loads)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)

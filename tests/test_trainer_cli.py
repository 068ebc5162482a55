"""`callpilot inbox` and `callpilot models list|activate` on a real database and real model folders."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from bot.nlu import NLUEngine
from bot.nlu.storage import active_id, set_active
from callpilot.cli import app as cli
from callpilot.records.db import Database
from callpilot.trainer.inbox import Sighting, store_sighting

ROOT = Path(__file__).resolve().parent.parent


def test_inbox_and_models_on_the_command_line(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    env = {"CALLPILOT_STATE_DIR": str(tmp_path), "CALLPILOT_MODELS_DIR": str(tmp_path / "models")}
    database = Database(f"sqlite:///{tmp_path / 'callpilot.db'}")
    database.upgrade()
    with database.session() as session:
        store_sighting(session, Sighting(text="do you do gift wrapping", reason="low_confidence", call_id="c9",
                                         channel="rest", predicted_intent="payment_methods", confidence=0.34))
    database.dispose()
    runner = CliRunner()
    listed = runner.invoke(cli, ["inbox"], env=env)
    assert listed.exit_code == 0 and "do you do gift wrapping" in listed.output and "low_confidence" in listed.output
    assert runner.invoke(cli, ["inbox", "--status", "nonsense"], env=env).exit_code == 2
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(ROOT / "models" / nlu_engine.model_id, models / nlu_engine.model_id)
    shutil.copytree(ROOT / "models" / nlu_engine.model_id, models / "nlu-older")
    set_active(models, "nlu-older")
    listing = runner.invoke(cli, ["models", "list"], env=env)
    assert listing.exit_code == 0 and "* nlu-older" in listing.output
    assert runner.invoke(cli, ["models", "activate", "nlu-nope"], env=env).exit_code == 1
    done = runner.invoke(cli, ["models", "activate", nlu_engine.model_id], env=env)
    assert done.exit_code == 0 and active_id(models) == nlu_engine.model_id


def test_callpilot_chat_turns_reach_the_inbox(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    env = {"CALLPILOT_STATE_DIR": str(tmp_path), "CALLPILOT_DATA_DIR": str(ROOT / "nlu_data"),
           "CALLPILOT_MODELS_DIR": str(ROOT / "models")}
    chatted = CliRunner().invoke(cli, ["chat"], input="purple elephants dance on my roof\n/quit\n", env=env)
    assert chatted.exit_code == 0, chatted.output
    listed = CliRunner().invoke(cli, ["inbox", "--json"], env=env)
    assert "purple elephants dance on my roof" in listed.output and '"call_id": "chat-' in listed.output

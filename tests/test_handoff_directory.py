"""The agent directory and `callpilot agent`: skills, hashed tokens, one file shared by processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callpilot.cli import app
from handoff.directory import AgentDirectory, hash_token, parse_skills
from handoff.errors import UnknownAgent

ROOT = Path(__file__).resolve().parent.parent


def test_skills_with_levels_and_bad_skills() -> None:
    assert parse_skills("orders, tech:4") == {"orders": 3, "tech": 4}
    for bad, message in [("", "at least one skill"), ("Orders", "bad skill name"), ("tech:9", "1-5"),
                         ("tech:high", "a number")]:
        with pytest.raises(ValueError, match=message):
            parse_skills(bad)


def test_tokens_are_stored_only_as_hashes(tmp_path: Path) -> None:
    directory = AgentDirectory(tmp_path / "agents.json")
    agent, token = directory.add("Ann Lee", {"orders": 3})
    text = (tmp_path / "agents.json").read_text()
    assert token not in text and hash_token(token) in text
    assert directory.by_token(token) == agent
    with pytest.raises(UnknownAgent):
        directory.by_token(token + "x")


def test_agents_get_unique_ids_and_removal_revokes_the_token(tmp_path: Path) -> None:
    directory = AgentDirectory(tmp_path / "agents.json")
    first, token = directory.add("Ann Lee", {"orders": 3})
    second, _ = directory.add("Ann Lee", {"tech": 2})
    assert (first.agent_id, second.agent_id) == ("ann-lee", "ann-lee-2")
    other_process_view = AgentDirectory(tmp_path / "agents.json")
    assert other_process_view.by_token(token).agent_id == "ann-lee"
    directory.remove("ann-lee")
    with pytest.raises(UnknownAgent):
        other_process_view.by_token(token)  # re-read: the file changed
    with pytest.raises(UnknownAgent, match="no agent with id 'nobody'"):
        directory.remove("nobody")


def test_a_broken_directory_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "agents.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"agents\.json: not a valid agent directory"):
        AgentDirectory(tmp_path / "agents.json").agents()


def test_processes_adding_agents_at_once_lose_none(tmp_path: Path) -> None:
    script = ("import sys; from pathlib import Path; from handoff.directory import AgentDirectory\n"
              "d = AgentDirectory(Path(sys.argv[1]))\n"
              "for i in range(10): d.add(f'{sys.argv[2]} {i}', {'general': 1})\n")
    path = tmp_path / "agents.json"
    workers = [subprocess.Popen([sys.executable, "-c", script, str(path), name], cwd=ROOT)
               for name in ("ann", "bob", "cat")]
    assert [w.wait(60) for w in workers] == [0, 0, 0]
    assert len(json.loads(path.read_text())["agents"]) == 30


def test_the_agent_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CALLPILOT_STATE_DIR": str(tmp_path)}
    added = runner.invoke(app, ["agent", "add", "Ann Lee", "--skills", "orders,tech:4"], env=env)
    assert added.exit_code == 0, added.output
    # the token alone on stdout (like `apikey create`'s key), so TOKEN=$(callpilot agent add ...) works
    [token] = added.stdout.splitlines()
    assert re.fullmatch(r"cpa_\S+", token) and "added agent ann-lee" in added.stderr
    assert AgentDirectory(tmp_path / "agents.json").by_token(token).skills == {"orders": 3, "tech": 4}
    listed = runner.invoke(app, ["agent", "list"], env=env)
    assert "ann-lee\tAnn Lee\torders:3,tech:4\ttoken expires never" in listed.output
    assert token not in listed.output
    bad = runner.invoke(app, ["agent", "add", "Bob", "--skills", "tech:7"], env=env)
    assert bad.exit_code == 2 and "skill level must be 1-5" in bad.output
    assert runner.invoke(app, ["agent", "remove", "ann-lee"], env=env).exit_code == 0
    assert runner.invoke(app, ["agent", "remove", "ann-lee"], env=env).exit_code == 1
    assert "no agents yet" in runner.invoke(app, ["agent", "list"], env=env).output

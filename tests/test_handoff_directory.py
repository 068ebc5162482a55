"""The agent directory and `callpilot agent`: skills, hashed tokens, one file or Redis shared by processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callpilot.cli import app
from callpilot.settings import Settings
from handoff import agent_directory
from handoff.agent_store import FileAgentStore, RedisAgentStore
from handoff.directory import AgentDirectory, hash_token, parse_skills
from handoff.errors import RedisUnavailable, UnknownAgent
from handoff.redis_conn import Keys, sync_client
from tests.voice_helpers import free_port

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


# The directory in Redis: every process and machine sees the same agents (handoff.agent_store).

REDIS = "redis://127.0.0.1:6379/0"


def _redis_directory(prefix: str, *, recheck_s: float = 0.0) -> AgentDirectory:
    keys = Keys(prefix)
    store = RedisAgentStore(sync_client(REDIS), hash_key=keys.agent_directory,
                            version_key=keys.agent_directory_version, url=REDIS)
    return AgentDirectory(store, recheck_s=recheck_s)


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = sync_client(REDIS)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_an_agent_added_on_one_machine_signs_in_on_another_and_removal_revokes_everywhere(prefix: str) -> None:
    machine_a = _redis_directory(prefix, recheck_s=0.2)
    machine_b = _redis_directory(prefix, recheck_s=0.2)
    assert machine_b.agents() == []
    agent, token = machine_a.add("Ann Lee", {"orders": 3})
    assert machine_b.by_token(token) == agent  # a miss asks Redis at once
    stored = sync_client(REDIS).hgetall(Keys(prefix).agent_directory)
    assert token not in json.dumps(stored) and hash_token(token) in stored["ann-lee"]
    machine_a.set_phone("ann-lee", "+8613812345678")
    time.sleep(0.25)
    assert machine_b.get("ann-lee").phone == "+8613812345678"
    machine_a.remove("ann-lee")
    time.sleep(0.25)
    with pytest.raises(UnknownAgent):
        machine_b.by_token(token)


def test_processes_adding_agents_to_redis_at_once_lose_none(prefix: str) -> None:
    script = ("import sys; from handoff.agent_store import RedisAgentStore\n"
              "from handoff.directory import AgentDirectory; from handoff.redis_conn import Keys, sync_client\n"
              "k = Keys(sys.argv[1]); s = RedisAgentStore(sync_client(sys.argv[3]), hash_key=k.agent_directory,"
              " version_key=k.agent_directory_version)\n"
              "d = AgentDirectory(s)\n"
              "for i in range(10): d.add(f'{sys.argv[2]} {i}', {'general': 1})\n")
    workers = [subprocess.Popen([sys.executable, "-c", script, prefix, name, REDIS], cwd=ROOT)
               for name in ("ann", "bob", "cat")]
    assert [w.wait(60) for w in workers] == [0, 0, 0]
    assert len(_redis_directory(prefix).agents()) == 30


def test_moving_to_redis_keeps_the_agents_of_the_file_once(tmp_path: Path, prefix: str) -> None:
    _, token = AgentDirectory(tmp_path / "agents.json").add("Ann Lee", {"orders": 3})
    settings = Settings.load(state_dir=tmp_path, redis_url=REDIS)
    directory = agent_directory(settings, keys=Keys(prefix))
    assert directory.by_token(token).agent_id == "ann-lee" and "Redis at redis://127.0.0.1:6379/0" in directory.where
    directory.remove("ann-lee")
    again = agent_directory(settings, keys=Keys(prefix))  # a restart: Redis is the directory now
    directory.add("Bob", {"tech": 2})
    assert [a.agent_id for a in again.agents()] == ["bob"]


def test_which_store_the_settings_choose(tmp_path: Path) -> None:
    def store(**handoff: object) -> AgentDirectory:
        redis_url = handoff.pop("redis_url", None)
        return agent_directory(Settings.load(state_dir=tmp_path, redis_url=redis_url, handoff=handoff))

    assert isinstance(store().store, FileAgentStore)  # one process, the embedded Redis
    assert isinstance(store(redis_url=REDIS).store, RedisAgentStore)
    assert isinstance(store(redis_url=REDIS, agent_store="file").store, FileAgentStore)
    with pytest.raises(ValueError, match="'redis' needs redis_url"):
        store(agent_store="redis")


def test_redis_gone_keeps_signed_in_agents_served_and_the_cli_says_why(prefix: str, tmp_path: Path) -> None:
    directory = _redis_directory(prefix)
    _, token = directory.add("Ann Lee", {"orders": 3})
    port = free_port()
    gone = f"redis://127.0.0.1:{port}/0"
    directory.store = RedisAgentStore(sync_client(gone), hash_key=Keys(prefix).agent_directory,
                                      version_key=Keys(prefix).agent_directory_version, url=gone)
    assert directory.by_token(token).agent_id == "ann-lee"  # the copy read earlier
    asked: list[str] = []
    real_stamp = directory.store.stamp
    directory.store.stamp = lambda: asked.append("stamp") or real_stamp()  # type: ignore[method-assign]
    for _ in range(20):  # sign-ins during the outage (on the event loop) do not wait for Redis each time
        directory.by_token(token)
    with pytest.raises(UnknownAgent):
        directory.by_token("cpa_unknown")  # a miss neither
    assert asked == []
    with pytest.raises(RedisUnavailable, match=f"cannot reach Redis at {gone}"):
        directory.add("Bob", {"tech": 2})
    result = CliRunner().invoke(app, ["agent", "add", "Bob", "--skills", "tech"],
                                env={"CALLPILOT_STATE_DIR": str(tmp_path), "CALLPILOT_REDIS_URL": gone})
    assert result.exit_code == 2 and f"cannot reach Redis at {gone}" in result.output
    assert "Traceback" not in result.output


def test_the_agent_commands_on_redis(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CALLPILOT_STATE_DIR": str(tmp_path), "CALLPILOT_REDIS_URL": "redis://127.0.0.1:6379/3"}
    sync_client(env["CALLPILOT_REDIS_URL"]).delete(Keys().agent_directory, Keys().agent_directory_version)
    try:
        added = runner.invoke(app, ["agent", "add", "Ann Lee", "--skills", "orders"], env=env)
        assert added.exit_code == 0, added.output
        assert "to Redis at redis://127.0.0.1:6379/3" in added.stderr and not (tmp_path / "agents.json").exists()
        assert "ann-lee\tAnn Lee" in runner.invoke(app, ["agent", "list"], env=env).output
    finally:
        sync_client(env["CALLPILOT_REDIS_URL"]).delete(Keys().agent_directory, Keys().agent_directory_version)



"""With a Redis URL, two callpilot processes (here: two dialogue engines) carry on one conversation."""

from __future__ import annotations

import uuid

import pytest
import redis

from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def settings() -> Settings:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError as exc:  # .ci/run starts redis-server; say so when it is missing
        pytest.fail(f"the real Redis at {REDIS_URL} is not running: {exc}")
    return Settings.load(redis_url=REDIS_URL)


def test_a_conversation_started_in_one_process_continues_in_another(settings: Settings, nlu_engine: NLUEngine) -> None:
    sender = f"test-shared-{uuid.uuid4().hex}"
    first, second = build_dialogue(settings, nlu_engine), build_dialogue(settings, nlu_engine)
    try:
        asked = first.handle_text(sender, "where is my order")
        assert any("order number" in m.lower() for m in asked.messages), asked.messages
        # The other engine knows the form is waiting for the order number.
        answered = second.handle_text(sender, "four eight two one five")
        assert any("48215" in m for m in answered.messages), answered.messages
    finally:
        redis.Redis.from_url(REDIS_URL).delete(*redis.Redis.from_url(REDIS_URL).keys(f"*{sender}*") or ["-"])


def test_without_a_redis_url_each_engine_keeps_its_own_conversations(nlu_engine: NLUEngine) -> None:
    settings = Settings.load()
    sender = f"test-local-{uuid.uuid4().hex}"
    first, second = build_dialogue(settings, nlu_engine), build_dialogue(settings, nlu_engine)
    first.handle_text(sender, "where is my order")
    answered = second.handle_text(sender, "four eight two one five")
    assert not any("48215 is" in m for m in answered.messages), answered.messages


def test_dialogue_worker_threads_saving_at_once_lose_nothing_and_raise_nothing() -> None:
    """The voice pipeline runs dialogue turns on a thread pool: 8 threads saving 40 callers' states at once (a
    soak found `KeyError` from two threads re-syncing the same pending change, which hung the call up)."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.dialogue.state import ConversationState
    from handoff.redis_conn import Keys
    from handoff.store import RedisSessionStore

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = Keys(f"test:{uuid.uuid4().hex[:10]}:")
    store = RedisSessionStore(client, ttl_s=60, keys=keys)

    def turns(caller: int) -> None:
        for step in range(25):
            store.save(ConversationState(sender_id=f"caller-{caller}", slots={"step": step}))

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(turns, range(40)))  # re-raises any thread's exception
        assert store.unsynced == 0
        assert all(store.load(f"caller-{n}").slots == {"step": 24} for n in range(40))  # type: ignore[union-attr]
    finally:
        for key in client.scan_iter(f"{keys.prefix}*"):
            client.delete(key)

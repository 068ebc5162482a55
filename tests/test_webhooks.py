"""Webhooks: signatures, and delivery to a real local HTTP receiver that fails, recovers, or is not there."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callpilot.ops.webhooks import (
    Backoff,
    SignatureError,
    Subscription,
    WebhookDispatcher,
    sign,
    verify,
)
from tests.webhook_receiver import SECRET, Receiver

pytestmark = pytest.mark.anyio
FAST = Backoff(base_s=0.01, cap_s=0.05, max_attempts=4)


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A URL where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook"


# Signatures.


def test_a_signature_covers_the_timestamp_and_the_exact_body() -> None:
    body = b'{"event":"call.started"}'
    signature = sign(SECRET, 1_700_000_000, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    verify(SECRET, "1700000000", body, signature, now=1_700_000_010)  # no error
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, "1700000000", body + b" ", signature, now=1_700_000_010)
    with pytest.raises(SignatureError, match="does not match"):
        verify("another-secret", "1700000000", body, signature, now=1_700_000_010)
    with pytest.raises(SignatureError, match="does not match"):  # the timestamp is signed too
        verify(SECRET, "1700000001", body, signature, now=1_700_000_010)


def test_a_known_vector() -> None:
    # openssl: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec-test
    assert sign(SECRET, 1_700_000_000, b"{}") == (
        "sha256=b61622af519f191c257cf4d76855c6f588e4a0799440900d6c0d16b671af84fa"
    )


def test_stale_and_malformed_requests_are_refused_with_a_reason() -> None:
    body = b"{}"
    old = sign(SECRET, 1_700_000_000, body)
    with pytest.raises(SignatureError, match="away from now"):
        verify(SECRET, "1700000000", body, old, now=1_700_000_000 + 301)
    verify(SECRET, "1700000000", body, old, now=1_700_000_000 + 301, tolerance_s=600)
    with pytest.raises(SignatureError, match="Timestamp"):
        verify(SECRET, None, body, old)
    with pytest.raises(SignatureError, match="Timestamp"):
        verify(SECRET, "yesterday", body, old)
    with pytest.raises(SignatureError, match="sha256=<hex>"):
        verify(SECRET, "1700000000", body, "md5=abc", now=1_700_000_000)


# Delivery.


async def test_a_failing_receiver_gets_the_same_signed_event_until_it_accepts() -> None:
    with Receiver(SECRET, fail_first=2) as receiver:
        hooks = WebhookDispatcher([Subscription(receiver.url, SECRET)], backoff=FAST)
        await hooks.start()
        hooks.emit("call.started", {"call_id": "c1", "caller": "+15550100000"})
        await asyncio.wait_for(hooks.drain(), 10)
        await hooks.stop()
    assert [r["valid"] for r in receiver.posts] == [True, True, True]
    assert len({r["delivery"] for r in receiver.posts}) == 1  # one delivery, three attempts
    first = receiver.posts[0]["body"]
    assert isinstance(first, dict)
    assert first["event"] == "call.started" and first["data"] == {"call_id": "c1", "caller": "+15550100000"}
    attempts = [(r.attempt, r.status, r.delivered) for r in hooks.log]
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)]


async def test_a_receiver_with_the_wrong_secret_refuses_and_the_dispatcher_gives_up() -> None:
    with Receiver("the-receivers-secret") as receiver:
        hooks = WebhookDispatcher([Subscription(receiver.url, SECRET)], backoff=FAST)
        await hooks.start()
        hooks.emit("alert.fired", {"rule": "answer_rate"})
        await asyncio.wait_for(hooks.drain(), 10)
        await hooks.stop()
    assert [r["valid"] for r in receiver.posts] == [False] * 4
    last = hooks.log[-1]
    assert (last.attempt, last.status, last.gave_up) == (4, 401, True)


async def test_a_receiver_that_is_down_never_blocks_emit(closed_port_url: str) -> None:
    hooks = WebhookDispatcher([Subscription(closed_port_url, SECRET)], backoff=FAST)
    await hooks.start()
    for n in range(20):
        hooks.emit("call.ended", {"call_id": f"c{n}"})
    assert len(hooks.log) == 0  # emit only queued: nothing has been attempted yet
    await asyncio.wait_for(hooks.drain(), 20)
    await hooks.stop()
    assert len(hooks.log) == 20 * 4
    assert all(r.status is None and r.error for r in hooks.log)
    assert sum(r.gave_up for r in hooks.log) == 20


async def test_a_full_queue_drops_events_instead_of_waiting(closed_port_url: str) -> None:
    hooks = WebhookDispatcher([Subscription(closed_port_url, SECRET)], backoff=FAST, queue_size=3)
    for n in range(5):  # not started: nothing drains the queue
        hooks.emit("call.started", {"call_id": f"c{n}"})
    assert hooks.dropped == 2


async def test_subscribers_get_only_the_events_they_asked_for() -> None:
    with Receiver(SECRET) as alerts, Receiver(SECRET) as everything:
        hooks = WebhookDispatcher(
            [Subscription(alerts.url, SECRET, frozenset({"alert.fired", "alert.resolved"})),
             Subscription(everything.url, SECRET)],
            backoff=FAST,
        )
        await hooks.start()
        hooks.emit("call.started", {"call_id": "c1"})
        hooks.emit("alert.fired", {"rule": "longest_wait"})
        await asyncio.wait_for(hooks.drain(), 10)
        await hooks.stop()
    assert [r["event"] for r in alerts.posts] == ["alert.fired"]
    assert sorted(str(r["event"]) for r in everything.posts) == ["alert.fired", "call.started"]


async def test_emit_from_another_thread_is_delivered() -> None:
    with Receiver(SECRET) as receiver:
        hooks = WebhookDispatcher([Subscription(receiver.url, SECRET)], backoff=FAST)
        await hooks.start()
        await asyncio.to_thread(hooks.emit, "handoff.requested", {"call_id": "c9", "skill": "orders"})
        await asyncio.sleep(0)  # let the thread-safe callback run
        await asyncio.wait_for(hooks.drain(), 10)
        await hooks.stop()
    assert [r["event"] for r in receiver.posts] == ["handoff.requested"]


def test_an_unknown_event_is_a_clear_error() -> None:
    hooks = WebhookDispatcher([])
    with pytest.raises(ValueError, match=r"unknown webhook event 'call\.exploded'"):
        hooks.emit("call.exploded", {})


def test_the_readme_recipe_verifies_a_real_delivery() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    recipe = readme.split("Verify a request in")[1].split("```python\n")[1].split("```")[0]
    namespace: dict[str, object] = {}
    exec(recipe, namespace)
    check = namespace["verify"]
    assert callable(check)
    body, timestamp = b'{"event": "call.ended"}', str(int(time.time()))
    headers = {"X-Callpilot-Timestamp": timestamp, "X-Callpilot-Signature": sign(SECRET, timestamp, body)}
    assert check(SECRET, headers, body) is True
    assert check(SECRET, headers, body + b" ") is False
    assert check("wrong-secret", headers, body) is False

"""Outgoing webhooks: HMAC-SHA256 signed JSON posts, queued and retried with backoff so a call never waits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bot.urls import mask_url, mask_urls_in
from callpilot.ops.config import WEBHOOK_EVENTS, WebhookTarget

log = logging.getLogger("callpilot.webhooks")

EVENTS: frozenset[str] = frozenset(WEBHOOK_EVENTS)
SIGNATURE_HEADER = "X-Callpilot-Signature"
TIMESTAMP_HEADER = "X-Callpilot-Timestamp"
EVENT_HEADER = "X-Callpilot-Event"
DELIVERY_HEADER = "X-Callpilot-Delivery"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook request whose signature or timestamp does not check out; the message says which."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of `b"<timestamp>." + body` keyed by `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a received webhook; raise SignatureError unless it is signed with `secret` within the window.

    The timestamp is part of the signed message, so a captured request cannot be replayed after the window.
    """
    if not timestamp or not timestamp.isdigit():
        raise SignatureError(f"missing or malformed {TIMESTAMP_HEADER}: {timestamp!r}")
    if not signature or not signature.startswith("sha256="):
        raise SignatureError(f"missing or malformed {SIGNATURE_HEADER}: expected 'sha256=<hex>'")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance_s:
        raise SignatureError(f"timestamp is {age:.0f} s away from now (tolerance {tolerance_s:.0f} s)")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise SignatureError("signature does not match the body (wrong secret or altered body)")


@dataclass(frozen=True)
class Subscription:
    """Where to post which events, and the shared secret to sign them with."""

    url: str
    secret: str
    events: frozenset[str] = EVENTS

    def wants(self, event: str) -> bool:
        return event in self.events

    @classmethod
    def from_settings(cls, target: WebhookTarget) -> Subscription:
        return cls(target.url, target.secret, frozenset(target.events))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits a random share of min(cap, base * 2**(n-1))."""

    base_s: float = 1.0
    cap_s: float = 60.0
    max_attempts: int = 6

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        ceiling: float = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * rand())


@dataclass(frozen=True)
class Delivery:
    """One event for one subscriber; the body is fixed once, so every retry sends the same bytes."""

    delivery_id: str
    event: str
    subscription: Subscription
    body: bytes
    attempt: int = 1


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt, for the delivery log."""

    delivery_id: str
    event: str
    url: str
    attempt: int
    status: int | None  # HTTP status, None when the request did not get an answer
    error: str | None
    delivered: bool
    gave_up: bool
    at: float


class WebhookDispatcher:
    """Posts events to subscribers from background tasks; `emit` only enqueues and never blocks or raises I/O.

    A full queue drops the event (and logs it) rather than slowing a call down.
    """

    def __init__(
        self,
        subscriptions: Iterable[Subscription],
        *,
        backoff: Backoff = Backoff(),
        timeout_s: float = 5.0,
        queue_size: int = 1000,
        workers: int = 2,
        log_size: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.subscriptions = tuple(subscriptions)
        self.backoff = backoff
        self.timeout_s = timeout_s
        self.clock = clock
        self.log: deque[DeliveryRecord] = deque(maxlen=log_size)
        self.dropped = 0
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(queue_size)
        self._workers_wanted = workers
        self._workers: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # Producing.

    def emit(self, event: str, payload: Mapping[str, Any]) -> None:
        """Queue `event` for every subscriber that wants it (safe from any thread)."""
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}; known: {', '.join(sorted(EVENTS))}")
        created = self.clock()
        for subscription in self.subscriptions:
            if not subscription.wants(event):
                continue
            delivery_id = uuid.uuid4().hex
            envelope = {"id": delivery_id, "event": event, "created_at": round(created, 3), "data": dict(payload)}
            body = json.dumps(envelope, ensure_ascii=False, default=str).encode("utf-8")
            self._enqueue(Delivery(delivery_id, event, subscription, body))

    def _enqueue(self, delivery: Delivery) -> None:
        loop = self._loop
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is not None and current is not loop and loop.is_running():
            loop.call_soon_threadsafe(self._put, delivery)  # emitted from another thread
        else:
            self._put(delivery)

    def _put(self, delivery: Delivery) -> None:
        try:
            self._queue.put_nowait(delivery)
            self._in_flight += 1
            self._idle.clear()
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("webhook queue full: dropped %s for %s", delivery.event, mask_url(delivery.subscription.url))

    # Lifecycle.

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=self.timeout_s)
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhooks-{n}") for n in range(self._workers_wanted)
        ]

    async def stop(self) -> None:
        for handle in self._retries:
            handle.cancel()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def drain(self) -> None:
        """Wait until every queued delivery succeeded or was given up (tests, shutdown)."""
        await self._idle.wait()

    # Delivering.

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._attempt(delivery)
            except Exception:  # a bug here must not kill the worker
                log.exception("webhook %s: unexpected error", delivery.delivery_id)
                self._done()

    async def _attempt(self, delivery: Delivery) -> None:
        assert self._client is not None
        timestamp = str(int(self.clock()))
        headers = {
            "content-type": "application/json",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.delivery_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(delivery.subscription.secret, timestamp, delivery.body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(delivery.subscription.url, content=delivery.body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {mask_urls_in(str(exc))}" if str(exc) else type(exc).__name__
        delivered = error is None
        gave_up = not delivered and delivery.attempt >= self.backoff.max_attempts
        self.log.append(
            DeliveryRecord(delivery.delivery_id, delivery.event, mask_url(delivery.subscription.url), delivery.attempt,
                           status, error, delivered, gave_up, self.clock())
        )
        if delivered or gave_up:
            if gave_up:
                log.warning("webhook %s to %s: gave up after %d attempts (%s)",
                            delivery.event, mask_url(delivery.subscription.url), delivery.attempt, error)
            self._done()
            return
        delay = self.backoff.delay(delivery.attempt)
        again = Delivery(delivery.delivery_id, delivery.event, delivery.subscription, delivery.body,
                         delivery.attempt + 1)
        handle = asyncio.get_running_loop().call_later(delay, self._retry, again)
        self._retries.add(handle)

    def _retry(self, delivery: Delivery) -> None:
        now = asyncio.get_running_loop().time()
        self._retries = {h for h in self._retries if h.when() > now}
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.dropped += 1
            self._done()

    def _done(self) -> None:
        self._in_flight -= 1
        if self._in_flight <= 0:
            self._in_flight = 0
            self._idle.set()

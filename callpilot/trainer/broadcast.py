"""Model switches told to every process sharing a Redis: one PUBLISH per activation, a listener thread each."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable

import redis

log = logging.getLogger("callpilot.trainer")
CHANNEL = "callpilot:trainer:model"


class ModelBroadcast:
    """Publishes this process's activations and applies the others' (never its own twice)."""

    def __init__(self, redis_url: str, on_activate: Callable[[str], object]) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.origin = uuid.uuid4().hex
        self.on_activate = on_activate
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def publish(self, model_id: str) -> None:
        try:
            self.client.publish(CHANNEL, json.dumps({"model_id": model_id, "origin": self.origin}))
        except redis.RedisError as exc:
            log.error("could not tell the other processes about model %s: %s", model_id, exc)

    def start(self) -> None:
        self._pubsub.subscribe(CHANNEL)
        self._thread = threading.Thread(target=self._listen, daemon=True, name="trainer-broadcast")
        self._thread.start()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except redis.RedisError as exc:
                log.warning("model broadcast: %s", exc)
                self._stopped.wait(1.0)
                continue
            if not message or message.get("type") != "message":
                continue
            try:
                event = json.loads(message["data"])
                if event.get("origin") != self.origin:
                    self.on_activate(str(event["model_id"]))
            except Exception:
                log.exception("could not switch to the published model")

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._pubsub.close()
        self.client.close()

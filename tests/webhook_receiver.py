"""A real local webhook receiver for the tests that deliver webhooks (the dispatcher, alerts, metrics, tickets, the
text channel): it checks each post's signature and keeps every post, and can fail the first few."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from callpilot.ops.webhooks import SignatureError, verify

SECRET = "whsec-test"  # the dispatcher's tests sign with it


class Receiver:
    """A webhook endpoint on a free port (`url`, or `base` and a path of the sender's). Every post is kept in order
    (`posts`: path, event, delivery, whether its signature verified with `secret`, body); the first `fail_first`
    get `fail_status`, later ones `ok_status`, or 401 when their signature is wrong. Use it as a context manager."""

    def __init__(self, secret: str, *, fail_first: int = 0, fail_status: int = 500,
                 ok_status: int = 200) -> None:
        self.secret = secret
        self.fail_first, self.fail_status, self.ok_status = fail_first, fail_status, ok_status
        self.posts: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    verify(receiver.secret, self.headers["X-Callpilot-Timestamp"], body,
                           self.headers["X-Callpilot-Signature"])
                    valid = True
                except SignatureError:
                    valid = False
                with receiver.arrived:
                    receiver.posts.append({"path": self.path, "event": self.headers["X-Callpilot-Event"],
                                           "delivery": self.headers["X-Callpilot-Delivery"], "valid": valid,
                                           "body": json.loads(body)})
                    failing = len(receiver.posts) <= receiver.fail_first
                    receiver.arrived.notify_all()
                self.send_response(receiver.fail_status if failing else receiver.ok_status if valid else 401)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, seconds: float = 30.0) -> list[dict[str, Any]]:
        """The first `count` posts, once they have arrived."""
        deadline = time.monotonic() + seconds
        with self.arrived:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.posts)} of {count} posts arrived: {self.posts}"
                self.arrived.wait(left)
            return list(self.posts)

    def wait_for_event(self, event: str, seconds: float = 30.0) -> dict[str, Any]:
        """The body of the first signed post of this event, once it has arrived."""
        deadline = time.monotonic() + seconds
        with self.arrived:
            while True:
                found = [p["body"] for p in self.posts if p["event"] == event and p["valid"]]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0, f"no {event} among {[p['event'] for p in self.posts]}"
                self.arrived.wait(left)

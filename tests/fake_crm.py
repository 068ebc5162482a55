"""An external CRM on a local port for the caller look-up tests: it answers `GET /contacts?phone=...` from a table
the test gives, and can be slow, broken or not speak JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeCrm:
    """Answers each number from `answers` (status and a JSON body, or bytes sent as they are), 404 for any other
    number or path; a number in `slow` is answered only once the test ends (`close`) or after 10 s. Every number
    asked for is kept in `asked`."""

    def __init__(self, answers: Mapping[str, tuple[int, object]], *, slow: Collection[str] = ()) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                phone = parse_qs(url.query).get("phone", [""])[0]
                crm.asked.append(phone)
                if url.path != "/contacts":
                    return self._send(404, {"error": "no route"})
                if phone in slow:
                    crm.release.wait(10)
                status, body = answers.get(phone, (404, {"error": "unknown"}))
                return self._send(status, body)

            def _send(self, status: int, body: object) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                if not isinstance(body, bytes):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

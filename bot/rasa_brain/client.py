"""Async HTTP client for a Rasa Open Source 3.x server (`rasa run --enable-api`)."""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from bot.urls import mask_url, mask_urls_in


class RasaUnavailable(Exception):
    """The Rasa server could not be reached or answered with something unusable."""


class RasaClient:
    """Talks to Rasa's HTTP API and REST channel; one instance may serve many calls."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:5005",
        timeout: float = 10.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> RasaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    async def parse(self, text: str) -> dict[str, Any]:
        """Run NLU only: intent, intent ranking and entities for `text`."""
        result = await self._request("POST", "/model/parse", json={"text": text})
        if not isinstance(result, dict) or "intent" not in result:
            raise RasaUnavailable(f"unexpected /model/parse answer: {result!r}")
        return result

    async def send(self, sender_id: str, text: str) -> list[dict[str, Any]]:
        """Send a user message through the REST channel; returns the bot's messages."""
        result = await self._request("POST", "/webhooks/rest/webhook", json={"sender": sender_id, "message": text})
        if not isinstance(result, list) or not all(isinstance(m, dict) for m in result):
            raise RasaUnavailable(f"unexpected REST webhook answer: {result!r}")
        return result

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        """The conversation tracker (slots, events, latest message) of `sender_id`."""
        result = await self._request("GET", f"/conversations/{quote(sender_id, safe='')}/tracker")
        if not isinstance(result, dict):
            raise RasaUnavailable(f"unexpected tracker answer: {result!r}")
        return result

    async def status(self) -> dict[str, Any]:
        """Server status: loaded model file and id, running training jobs."""
        result = await self._request("GET", "/status")
        if not isinstance(result, dict):
            raise RasaUnavailable(f"unexpected /status answer: {result!r}")
        return result

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        url = mask_url(f"{self.base_url}{path}")
        try:
            response = await self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa server at {mask_url(self.base_url)} unreachable: "
                                 f"{mask_urls_in(repr(exc))}") from exc
        if response.status_code >= 400:
            raise RasaUnavailable(f"{method} {url} -> HTTP {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise RasaUnavailable(f"{method} {url} answered non-JSON: {response.text[:300]}") from exc

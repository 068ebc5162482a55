"""Twilio's REST API, the parts callpilot uses on a Twilio line: place a call (a callback) and redirect a live call
to new TwiML (a transfer), then read a call's status. Requests follow Twilio's documented shapes
(https://www.twilio.com/docs/voice/api/call-resource): `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`
with form fields To, From, Url (or Twiml), Timeout, StatusCallback; `POST .../Calls/{CallSid}.json` with Twiml;
`GET .../Calls/{CallSid}.json`; HTTP Basic authentication with the account SID and auth token.
Twilio cannot be reached from the machine the tests run on: they check these requests, not Twilio's answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import httpx

API_URL = "https://api.twilio.com"
FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
# A call's status as a callback attempt's outcome (in-progress: answered).
OUTCOMES = {"in-progress": "answered", "completed": "answered", "busy": "busy", "no-answer": "no_answer",
            "failed": "unreachable", "canceled": "cancelled"}
_SID = re.compile(r"^(AC|CA)[0-9a-fA-F]{32}$")


class TwilioError(RuntimeError):
    """Twilio refused a request (or could not be reached): the HTTP status and Twilio's code and message."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(f"Twilio {status}" + (f" (code {code})" if code else "") + f": {message}")
        self.status, self.code = status, code


def dial_twiml(target: str, *, caller_id: str | None = None, timeout_s: int = 30) -> str:
    """`<Response><Dial>` to a number, or to a SIP address with `<Sip>`."""
    attrs = f' timeout="{int(timeout_s)}"' + (f' callerId="{escape(caller_id)}"' if caller_id else "")
    inner = f"<Sip>{escape(target)}</Sip>" if target.startswith(("sip:", "sips:")) else escape(target)
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial{attrs}>{inner}</Dial></Response>'


@dataclass(frozen=True)
class TwilioRest:
    """A client for one Twilio account; `transport` lets tests see the requests (httpx.MockTransport)."""

    account_sid: str
    auth_token: str
    api_url: str = API_URL
    timeout_s: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None

    def __post_init__(self) -> None:
        if not _SID.match(self.account_sid) or not self.account_sid.startswith("AC"):
            raise ValueError("a Twilio account SID looks like AC followed by 32 hex digits")
        if not self.auth_token:
            raise ValueError("the Twilio auth token is empty")

    def _calls(self, call_sid: str | None = None) -> str:
        base = f"{self.api_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Calls"
        if call_sid is None:
            return base + ".json"
        if not _SID.match(call_sid) or not call_sid.startswith("CA"):
            raise ValueError(f"not a Twilio call SID: {call_sid!r}")
        return f"{base}/{call_sid}.json"

    async def _send(self, method: str, url: str, form: dict[str, str] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(auth=(self.account_sid, self.auth_token), timeout=self.timeout_s,
                                     transport=self.transport) as client:
            try:
                reply = await client.request(method, url, data=form)
            except httpx.HTTPError as exc:
                raise TwilioError(0, f"cannot reach {self.api_url}: {exc}") from None
        try:
            body: dict[str, Any] = reply.json()
        except ValueError:
            body = {}
        if reply.status_code >= 400:
            raise TwilioError(reply.status_code, str(body.get("message") or reply.text[:200]), body.get("code"))
        return body

    async def create_call(self, to: str, from_: str, *, url: str | None = None, twiml: str | None = None,
                          timeout_s: int = 30, status_callback: str | None = None) -> str:
        """Place a call; Twilio fetches `url` (or runs `twiml`) when it is answered. Returns the call SID."""
        if (url is None) == (twiml is None):
            raise ValueError("a call needs exactly one of url= or twiml=")
        form = {"To": to, "From": from_, "Timeout": str(int(timeout_s))}
        form.update({"Url": url} if url is not None else {"Twiml": twiml or ""})
        if status_callback:
            form["StatusCallback"] = status_callback
        return str((await self._send("POST", self._calls(), form))["sid"])

    async def redirect_call(self, call_sid: str, twiml: str) -> None:
        """Replace a live call's TwiML (its media stream ends; the call goes on with `twiml`)."""
        await self._send("POST", self._calls(call_sid), {"Twiml": twiml})

    async def call_status(self, call_sid: str) -> str:
        """queued, ringing, in-progress, completed, busy, no-answer, failed or canceled."""
        return str((await self._send("GET", self._calls(call_sid)))["status"])

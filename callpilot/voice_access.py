"""Who may start a call, and how many: the checks in front of the voice endpoints (see docs/security.md).

- Twilio's webhook: `X-Twilio-Signature` over our public URL (settings, never a client's X-Forwarded-Host);
  the TwiML's per-call media token checked on the stream's `start`.
- The browser softphone: on only where settings say so (by default only while the server listens on
  loopback), and at most `phone_calls_per_minute` calls a minute from one address.
- Every transport: at most `max_calls` calls at once (`CallGate`), a start message within
  `call_start_timeout_s` and calls no longer than `max_call_s` (`CallLimits`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from starlette.requests import Request

from callpilot.settings import Settings
from voice_gateway.transports import CallLimits
from voice_gateway.twilio_security import valid_media_token, valid_twilio_signature

log = logging.getLogger("callpilot.voice")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
BUSY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>'


def call_limits(settings: Settings) -> CallLimits:
    return CallLimits(start_timeout_s=settings.call_start_timeout_s, max_call_s=settings.max_call_s)


def phone_enabled(settings: Settings) -> bool:
    """The softphone places bot calls with any caller number: by default only on a loopback-only server."""
    return settings.phone_enabled if settings.phone_enabled is not None else settings.host in LOOPBACK


def signed_url(settings: Settings, request: Request) -> str:
    """The URL Twilio signed: `public_url` + the path and query when set, else the URL as requested."""
    if settings.public_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return settings.public_url.rstrip("/") + request.url.path + query
    return str(request.url)


def twilio_request_ok(settings: Settings, request: Request, form: Mapping[str, str]) -> bool:
    """True without a token (unverified mode, warned about at start); else the signature must match."""
    token = settings.twilio_auth_token
    if not token:
        return True
    return valid_twilio_signature(token, signed_url(settings, request), form,
                                  request.headers.get("x-twilio-signature"))


def media_start_check(settings: Settings) -> Callable[[str, Mapping[str, str]], bool] | None:
    token = settings.twilio_auth_token
    if not token:
        return None
    return lambda call_sid, parameters: valid_media_token(token, call_sid, parameters)


def warn_about_open_doors(settings: Settings) -> None:
    if not settings.twilio_auth_token:
        log.warning("Twilio requests are NOT verified: set CALLPILOT_TWILIO_AUTH_TOKEN (and CALLPILOT_PUBLIC_URL "
                    "behind a proxy) before connecting a real Twilio number")
    if phone_enabled(settings) and settings.host not in LOOPBACK:
        log.warning("the browser softphone /phone is open to anyone who reaches %s", settings.host)


class RateLimiter:
    """At most `per_minute` events per key in any minute (a token bucket per key, the oldest keys forgotten)."""

    def __init__(self, per_minute: int, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.max_keys, self.clock = per_minute, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def allow(self, key: str) -> bool:
        now = self.clock()
        tokens, at = self._buckets.pop(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60.0)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

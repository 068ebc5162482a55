"""Twilio's request signature and our per-call media token (sans-I/O, tested with Twilio's documented example).

`X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted by
name)), over the URL Twilio requested - our public URL from settings, never a client's `X-Forwarded-Host`. The
TwiML we answer hands the media stream a token bound to the call (HMAC-SHA256 of its CallSid), which the
`start` message must carry back as a custom parameter: a websocket client that did not come through a signed
webhook cannot start a call with a call id, caller or called number of its choosing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

MEDIA_TOKEN_PARAMETER = "token"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The signature Twilio computes for a request to `url` with these POST parameters."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(twilio_signature(auth_token, url, params), signature or "")


def media_token(secret: str, call_sid: str) -> str:
    """The token the TwiML gives the media stream of `call_sid`."""
    return hmac.new(secret.encode(), f"media:{call_sid}".encode(), hashlib.sha256).hexdigest()[:40]


def valid_media_token(secret: str, call_sid: str, parameters: Mapping[str, str]) -> bool:
    return hmac.compare_digest(media_token(secret, call_sid), parameters.get(MEDIA_TOKEN_PARAMETER, ""))

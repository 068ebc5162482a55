"""A sealed record of a caller's verification, for conversations whose state the sender holds (a Rasa tracker).

Our engine keeps `ConversationState.verified` on the server. A Rasa server keeps slots in its tracker, and
`POST /webhook` receives the whole tracker from whoever calls it, so the action server hands Rasa the
verification as an HMAC-sealed slot value bound to the conversation and its time: a tracker that claims a
verification without a valid seal (or copies one from another conversation) counts as not verified.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

SLOT = "caller_verified"
_VERSION = "v1"


class VerificationSeal:
    """Seals and opens `{customer_id: method}` for one conversation (sender id)."""

    def __init__(self, key: bytes | None = None, *, max_age_s: float = 3600.0) -> None:
        self._key = key or secrets.token_bytes(32)  # per process unless a shared key is configured
        self.max_age_s = max_age_s

    def seal(self, sender_id: str, verified: dict[str, str], now: float) -> str:
        body = json.dumps({"s": sender_id, "v": verified, "t": round(now, 3)}, sort_keys=True,
                          separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{_VERSION}.{payload}.{self._mac(payload)}"

    def open(self, sender_id: str, token: object, now: float) -> dict[str, str]:
        """The verified customers, or {} for anything not sealed by us, for another sender, or too old."""
        if not isinstance(token, str) or token.count(".") != 2:
            return {}
        version, payload, mac = token.split(".")
        if version != _VERSION or not hmac.compare_digest(mac, self._mac(payload)):
            return {}
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return {}
        if not isinstance(data, dict) or data.get("s") != sender_id:
            return {}
        issued = data.get("t")
        if not isinstance(issued, (int, float)) or not 0 <= now - issued <= self.max_age_s:
            return {}
        verified = data.get("v")
        if not isinstance(verified, dict):
            return {}
        return {str(k): str(v) for k, v in verified.items()}

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, f"{_VERSION}.{payload}".encode(), hashlib.sha256).hexdigest()

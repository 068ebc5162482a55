"""Where callpilot's outgoing SIP calls go: an agent's registered phone, a SIP address, or a number through the
trunk (`sip_trunk`, with the digest credentials of the `sip_register` account at the same host)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from voice_gateway.transports.sip.call import SipCall
from voice_gateway.transports.sip.outbound import DialFailed, dial
from voice_gateway.transports.sip.server import SipServer

NUMBER = re.compile(r"^\+?\d{3,20}$")


class SipDialler:
    """Dials phone numbers, SIP addresses and registered phones from one `SipServer`."""

    def __init__(self, server: SipServer, *, trunk: str | None = None, trunk_auth: tuple[str, str] | None = None,
                 caller_id: str = "callpilot") -> None:
        self.server, self.trunk, self.trunk_auth, self.caller_id = server, trunk, trunk_auth, caller_id

    def uri_for(self, target: str) -> str:
        """The SIP URI of a number (through the trunk) or a sip: address."""
        if NUMBER.match(target) and self.trunk:
            return f"sip:{target}@{self.trunk.split(':', 1)[1]}"
        return target

    def expired_phones(self) -> list[str]:
        return self.server.registrar.expired() if self.server.registrar is not None else []

    async def dial(self, target: str, *, user: str | None = None, caller: str | None = None,
                   ring_timeout_s: float = 30.0, cancelled: asyncio.Event | None = None,
                   parameters: dict[str, str] | None = None) -> SipCall:
        """`target`: "sip" (the phone registered as `user`), sip:user@host[:port], or a number (via the trunk)."""
        caller = caller or self.caller_id
        common: dict[str, Any] = {"caller": caller, "ring_timeout_s": ring_timeout_s, "cancelled": cancelled,
                  "parameters": parameters}
        if target == "sip":
            binding = self.server.registrar.binding(user or "") if self.server.registrar is not None else None
            if binding is None:
                raise DialFailed("unreachable", 480, f"no phone registered as {user!r}")
            return await dial(self.server, binding.contact, destination=(binding.host, binding.port), **common)
        if target.startswith(("sip:", "sips:")):
            return await dial(self.server, target, **common)
        if NUMBER.match(target):
            if not self.trunk:
                raise DialFailed("unreachable", 0, "numbers are dialled through a SIP trunk: set sip_trunk")
            return await dial(self.server, self.uri_for(target), auth=self.trunk_auth, **common)
        raise DialFailed("not_found", 0, f"cannot dial {target!r}: a number, sip:user@host or 'sip'")

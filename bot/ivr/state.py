"""Per-call IVR state: one explicit, JSON-serialisable object the caller keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.ivr.transitions import Mode


@dataclass
class IvrState:
    """Where a caller is in the IVR; the engine mutates it in place."""

    mode: Mode = Mode.IDLE
    menu: str = ""  # current menu (kept after leaving, so the IVR can be re-entered there)
    path: list[str] = field(default_factory=list)  # ["main", "1:orders", "1:collect order_number"]
    retries: int = 0  # failed attempts (invalid key, no input, bad number) in this menu/collect
    digits: str = ""  # digit buffer while collecting
    slots: dict[str, str] = field(default_factory=dict)  # collected since the IVR was entered
    collect_key: str = ""  # the menu key whose `collect` chain is running
    collect_depth: int = 0  # how many `then: {collect: ...}` links deep that chain is
    reason: str = ""  # why the IVR was entered (passed to `IvrEngine.enter`)

    @property
    def active(self) -> bool:
        """True while the IVR is waiting for keys."""
        return self.mode is not Mode.IDLE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict; `from_dict` reverses it."""
        return {
            "mode": self.mode.value,
            "active": self.active,
            "menu": self.menu,
            "path": list(self.path),
            "retries": self.retries,
            "digits": self.digits,
            "slots": dict(self.slots),
            "collect_key": self.collect_key,
            "collect_depth": self.collect_depth,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IvrState:
        """Rebuild a state from `to_dict` output (`active` is derived from `mode`)."""
        return cls(
            mode=Mode(data.get("mode", Mode.IDLE.value)),
            menu=str(data.get("menu", "")),
            path=[str(p) for p in data.get("path", [])],
            retries=int(data.get("retries", 0)),
            digits=str(data.get("digits", "")),
            slots={str(k): str(v) for k, v in dict(data.get("slots", {})).items()},
            collect_key=str(data.get("collect_key", "")),
            collect_depth=int(data.get("collect_depth", 0)),
            reason=str(data.get("reason", "")),
        )

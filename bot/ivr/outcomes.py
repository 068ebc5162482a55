"""What the IVR engine tells its caller: prompts to say and how the IVR ended."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GoIntent:
    """Leave the IVR: the dialogue engine should handle `intent` with these slots."""

    intent: str
    slots: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SayResponse:
    """Say this domain response before the prompts; the IVR stays in the same menu."""

    name: str


@dataclass(frozen=True)
class Handoff:
    """Leave the IVR: queue the call for a human in `skill`."""

    skill: str
    reason: str = ""


@dataclass(frozen=True)
class HangUp:
    """Leave the IVR: end the call after the prompts."""


@dataclass(frozen=True)
class BackToSpeech:
    """Leave the IVR: the caller talks to the bot again."""


Outcome = GoIntent | SayResponse | Handoff | HangUp | BackToSpeech


@dataclass(frozen=True)
class IvrResult:
    """Texts to say, an optional outcome, and how long to wait for the next key."""

    prompts: tuple[str, ...] = ()
    outcome: Outcome | None = None
    timeout_seconds: float | None = None  # None: the IVR is no longer active

    @property
    def ended(self) -> bool:
        """True when the IVR is finished and the caller should not wait for keys."""
        return self.timeout_seconds is None

    def then(self, later: IvrResult) -> IvrResult:
        """This result followed by `later` (prompts joined, later outcome and timeout win)."""
        return IvrResult(
            prompts=self.prompts + later.prompts,
            outcome=later.outcome if later.outcome is not None else self.outcome,
            timeout_seconds=later.timeout_seconds,
        )

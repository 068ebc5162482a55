"""Rasa's action-server protocol, both ways: serve our actions, call a remote server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.dialogue.actions.registry import ActionContext, ActionRegistry, UnknownAction
from bot.dialogue.events import (
    CallerVerified,
    Event,
    SlotSet,
    event_to_rasa,
    events_from_rasa,
    response_to_rasa,
)
from bot.dialogue.rasa_format import (
    RASA_VERSION,
    domain_to_rasa,
    state_from_tracker,
    tracker_from_state,
)
from bot.dialogue.verification_seal import SLOT as VERIFIED_SLOT
from bot.dialogue.verification_seal import VerificationSeal
from bot.training_data.model import Domain
from bot.urls import mask_url, mask_urls_in

Transport = Callable[[str, dict[str, Any], float], dict[str, Any]]
CONFIRM_SLOT = "pending_confirmation"


@dataclass(frozen=True)
class ActionServerReply:
    """An HTTP status and JSON body, as Rasa's action server would answer."""

    status: int
    body: dict[str, Any]


class ActionServer:
    """Serves our registered Python actions to a Rasa server (`POST /webhook`)."""

    def __init__(self, registry: ActionRegistry, domain: Domain, backoffice: Any = None, *,
                 now: Callable[[], float] | None = None, seal: VerificationSeal | None = None,
                 verification_attempts: int = 3) -> None:
        self.registry, self.domain, self.backoffice = registry, domain, backoffice
        self._now = now or (lambda: 0.0)
        self.seal = seal or VerificationSeal(
            max_age_s=max(domain.session_config.session_expiration_time, 1) * 60.0)
        self.verification_attempts = verification_attempts

    def actions(self) -> list[dict[str, str]]:
        """Body of `GET /actions`."""
        return [{"name": name} for name in self.registry.local_names()]

    def handle(self, body: Any) -> ActionServerReply:
        """Run the requested action; 400 for a bad body, 404 for an unknown action."""
        if not isinstance(body, Mapping) or not isinstance(body.get("tracker"), Mapping):
            return ActionServerReply(400, {"error": "Invalid body request"})
        name = body.get("next_action")
        if not name:
            return ActionServerReply(400, {"error": "Received an action call without an action."})
        tracker = body["tracker"]
        state = state_from_tracker(tracker)
        now = self._now()
        # The tracker comes from the caller of this webhook: only our seal proves a verification, and it
        # never carries a calling number (network_number stays None), so verifying takes the second factor.
        state.verified = self.seal.open(state.sender_id, state.slots.get(VERIFIED_SLOT), now)
        latest = tracker.get("latest_message") or {}
        intent = (latest.get("intent") or {}).get("name")
        confirmed = intent == "affirm" and state.slots.get(CONFIRM_SLOT) == name
        context = ActionContext(state=state, domain=self.domain, backoffice=self.backoffice,
                                latest_message=latest, confirmed=confirmed, now=now,
                                verification_attempts=self.verification_attempts)
        try:
            events = self.registry.run_local(str(name), context)
        except UnknownAction:
            return ActionServerReply(404, {"error": f"No registered action found for name "
                                                    f"'{name}'.", "action_name": name})
        return ActionServerReply(200, render_reply(self._sealed(state.sender_id, state.verified, events, now),
                                                   confirmed=confirmed))

    def _sealed(self, sender_id: str, verified: dict[str, str], events: list[Event],
                now: float) -> list[Event]:
        """CallerVerified events become the sealed `caller_verified` slot Rasa keeps in its tracker."""
        found = {e.customer_id: e.method for e in events if isinstance(e, CallerVerified)}
        if not found:
            return events
        token = self.seal.seal(sender_id, {**verified, **found}, now)
        kept: list[Event] = [e for e in events if not isinstance(e, CallerVerified)]
        return [*kept, SlotSet(VERIFIED_SLOT, token)]


def render_reply(events: list[Event], *, confirmed: bool = False) -> dict[str, Any]:
    """`{"events": [...], "responses": [...]}` for our events."""
    from bot.dialogue.events import AskConfirmation

    rasa_events: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    # Rasa renders responses before it applies the events, so a template that
    # quotes a slot this action sets gets the value as a keyword, as Rasa SDK's
    # `dispatcher.utter_message(response=..., **kwargs)` does.
    slots_set = {e.name: e.value for e in events if isinstance(e, SlotSet) and e.value is not None}
    for event in events:
        if isinstance(event, AskConfirmation):
            event_dict = event_to_rasa(SlotSet(CONFIRM_SLOT, event.action))
        else:
            event_dict = event_to_rasa(event)
        if event_dict is not None:
            rasa_events.append(event_dict)
        message = response_to_rasa(event)
        if message is not None and message.get("response"):
            message = {**slots_set, **message}
        if message is not None:
            responses.append(message)
    if confirmed:
        rasa_events.append(event_to_rasa(SlotSet(CONFIRM_SLOT, None)) or {})
    return {"events": rasa_events, "responses": responses}


def handle_action_server_request(server: ActionServer, body: Any) -> dict[str, Any]:
    """The JSON body for a Rasa action-server request (errors carry an `error` key)."""
    return server.handle(body).body


class RemoteActionError(RuntimeError):
    """The remote action server failed or answered with an error."""


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read().decode() or "{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RemoteActionError(f"action server {mask_url(url)}: {mask_urls_in(str(exc))}") from exc
    if not isinstance(data, dict):
        raise RemoteActionError(f"action server {mask_url(url)}: unexpected answer {data!r}")
    return data


class RemoteActionClient:
    """Runs actions on a Rasa SDK action server (`POST <url>`, usually `.../webhook`)."""

    def __init__(self, url: str, *, transport: Transport | None = None,
                 timeout: float = 5.0) -> None:
        self.url, self.timeout = url, timeout
        self._transport = transport or _post_json

    def request_body(self, name: str, context: ActionContext) -> dict[str, Any]:
        """Rasa's action-server request for running `name` in this context."""
        tracker = tracker_from_state(context.state, context.latest_message, now=context.now)
        if context.confirmed:
            tracker["slots"][CONFIRM_SLOT] = name
        return {"next_action": name, "sender_id": context.state.sender_id, "tracker": tracker,
                "domain": domain_to_rasa(context.domain), "version": RASA_VERSION}

    def run(self, name: str, context: ActionContext) -> list[Event]:
        answer = self._transport(self.url, self.request_body(name, context), self.timeout)
        if "error" in answer:
            raise RemoteActionError(f"{name}: {answer['error']}")
        return events_from_rasa(list(answer.get("events") or []),
                                list(answer.get("responses") or []))

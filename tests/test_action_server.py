"""Rasa's action-server protocol, both directions, with Rasa-shaped JSON literals."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.backoffice import BackOffice
from bot.dialogue.action_server import (
    ActionServer,
    RemoteActionClient,
    RemoteActionError,
    handle_action_server_request,
)
from bot.dialogue.actions.demo import demo_registry
from bot.dialogue.actions.registry import ActionContext, ActionRegistry
from bot.dialogue.events import BotMessage, HandoffRequested, SlotSet, UtterResponse
from bot.dialogue.state import ConversationState, Turn
from bot.training_data import load_domain_text
from tests.rasa_payloads import REQUEST

DOMAIN = load_domain_text("""
version: "3.1"
intents: [check_order_status, affirm]
slots:
  order_number: {type: text, mappings: [{type: from_entity, entity: order_number}]}
  confirm_cancel: {type: bool, mappings: [{type: custom}]}
responses:
  utter_order_status: [{text: "Order {order_number} is {order_status}."}]
  utter_order_not_found: [{text: "No order {order_number}."}]
""", "domain.yml")

@pytest.fixture
def server() -> ActionServer:
    office = BackOffice.demo(today=date(2025, 6, 2))
    return ActionServer(demo_registry(), DOMAIN, office, now=lambda: 1718000001.0)


def test_runs_a_registered_action_with_rasa_shaped_answer(server: ActionServer) -> None:
    reply = server.handle(REQUEST)
    assert reply.status == 200
    events = {e["name"]: e["value"] for e in reply.body["events"] if e["event"] == "slot"}
    assert events["order_number"] == "48215"
    assert events["order_status"] == "shipped"
    assert events["carrier"] == "Brightline Fleet"
    assert all(set(e) >= {"event", "timestamp"} for e in reply.body["events"])
    # Rasa renders a response before applying the events: the slots the action
    # sets travel with the response as template values (Rasa SDK's utter_message kwargs).
    assert reply.body["responses"] == [{
        "text": None, "buttons": [], "elements": [], "custom": {}, "template":
        "utter_order_status", "response": "utter_order_status", "image": None,
        "attachment": None, **events}]


def test_unknown_order_reopens_the_slot(server: ActionServer) -> None:
    body = {**REQUEST, "tracker": {**REQUEST["tracker"], "slots": {"order_number": "40001"}}}
    reply = server.handle(body)
    assert reply.status == 200
    assert {"event": "slot", "timestamp": None, "name": "order_number", "value": None} in (
        reply.body["events"])
    assert reply.body["responses"][0]["response"] == "utter_order_not_found"


def test_unknown_action_is_404_like_rasa_sdk(server: ActionServer) -> None:
    reply = server.handle({**REQUEST, "next_action": "action_does_not_exist"})
    assert reply.status == 404
    assert reply.body["action_name"] == "action_does_not_exist"
    assert "error" in handle_action_server_request(server, {**REQUEST,
                                                            "next_action": "action_nope"})


@pytest.mark.parametrize("body", [None, [], {"next_action": "x"}, {"tracker": {}}])
def test_bad_bodies_are_400(server: ActionServer, body: Any) -> None:
    assert server.handle(body).status == 400


def test_lists_actions(server: ActionServer) -> None:
    names = [a["name"] for a in server.actions()]
    assert "action_check_order_status" in names and "action_cancel_order" in names


def _slots(reply: Any) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in reply.body["events"] if e["event"] == "slot"}


YES = {"intent": {"name": "affirm", "confidence": 0.99}, "entities": [], "text": "yes"}


def test_cancel_asks_first_then_the_security_question_then_cancels(server: ActionServer) -> None:
    tracker = {**REQUEST["tracker"], "slots": {"order_number": "41877"}}
    ask = server.handle({**REQUEST, "next_action": "action_cancel_order", "tracker": tracker})
    assert {"event": "slot", "timestamp": None, "name": "pending_confirmation",
            "value": "action_cancel_order"} in ask.body["events"]
    assert "cancel order 41877" in ask.body["responses"][0]["text"]
    confirmed = {**tracker, "slots": {"order_number": "41877",
                                      "pending_confirmation": "action_cancel_order"},
                 "latest_message": YES}
    asked = server.handle({**REQUEST, "next_action": "action_cancel_order", "tracker": confirmed})
    slots = _slots(asked)
    assert "order_status" not in slots and slots["verification_for"] == "action_cancel_order"
    assert {"event": "active_loop", "timestamp": None, "name": "verify_form"} in asked.body["events"]
    assert server.backoffice.order("41877").status.value == "processing"
    # Rasa's verify_form collected the answer; the action checks it and seals the result.
    answered = {**tracker, "slots": {"order_number": "41877", "confirm_cancel": True,
                                     "verification_for": "action_cancel_order",
                                     "verification_answer": "60607"}}
    verified = server.handle({**REQUEST, "next_action": "action_verify_caller", "tracker": answered})
    seal = _slots(verified)["caller_verified"]
    assert {"event": "followup", "timestamp": None, "name": "action_cancel_order"} in verified.body["events"]
    resumed = {**tracker, "slots": {"order_number": "41877", "confirm_cancel": True, "caller_verified": seal}}
    done = server.handle({**REQUEST, "next_action": "action_cancel_order", "tracker": resumed})
    slots = _slots(done)
    assert slots["order_status"] == "cancelled" and slots["refund_amount"] == "$649.00"


FORGED_PROOFS = ["C003", {"C003": "postcode"}, "v1.eyJzIjoiY2FsbGVyLTEifQ.00", None]


@pytest.mark.parametrize("proof", FORGED_PROOFS, ids=range(len(FORGED_PROOFS)))
def test_a_forged_tracker_cannot_cancel_change_or_invoice(server: ActionServer, proof: Any) -> None:
    """POST /webhook with a tracker that claims a confirmed, verified caller (and a calling number)."""
    slots = {"order_number": "41877", "confirm_cancel": True, "pending_confirmation": "action_cancel_order",
             "city": "Denver", "email": "attacker@example.com", "caller_verified": proof,
             "verification_failures": 0}
    latest = {**YES, "metadata": {"caller_number": "+13125550147"}}
    tracker = {**REQUEST["tracker"], "slots": slots, "latest_message": latest,
               "latest_input_channel": "twilio"}
    for action in ("action_cancel_order", "action_change_address", "action_send_invoice"):
        reply = server.handle({**REQUEST, "next_action": action, "tracker": tracker})
        assert reply.status == 200
        assert _slots(reply)["verification_for"] == action
        assert "caller_verified" not in _slots(reply)
    order = server.backoffice.order("41877")
    assert order.status.value == "processing" and order.address.city == "Chicago"
    assert server.backoffice.invoices == ()


def test_a_seal_from_another_conversation_or_too_old_is_refused(server: ActionServer) -> None:
    other = server.seal.seal("someone-else", {"C003": "postcode"}, 1718000000.0)
    old = server.seal.seal("caller-1", {"C003": "postcode"}, 1718000001.0 - 7200)
    for proof in (other, old):
        slots = {"order_number": "41877", "confirm_cancel": True, "caller_verified": proof}
        tracker = {**REQUEST["tracker"], "slots": slots, "latest_message": YES}
        reply = server.handle({**REQUEST, "next_action": "action_cancel_order", "tracker": tracker})
        assert "order_status" not in _slots(reply)
    assert server.backoffice.order("41877").status.value == "processing"


def test_wrong_answers_end_in_a_refusal(server: ActionServer) -> None:
    slots = {"order_number": "41877", "verification_for": "action_cancel_order",
             "verification_answer": "11111", "verification_failures": 2.0}
    tracker = {**REQUEST["tracker"], "slots": slots}
    reply = server.handle({**REQUEST, "next_action": "action_verify_caller", "tracker": tracker})
    assert {"event": "followup", "timestamp": None, "name": "utter_verification_refused"} in reply.body["events"]
    assert _slots(reply)["verification_failures"] == 3.0 and "caller_verified" not in _slots(reply)


def test_handoff_travels_as_a_slot(server: ActionServer) -> None:
    reply = server.handle({**REQUEST, "next_action": "action_handoff"})
    assert reply.body["events"] == [{"event": "slot", "timestamp": None,
                                     "name": "handoff_reason", "value": ""}]


# The other direction: calling someone else's Rasa SDK action server.

def _context() -> ActionContext:
    state = ConversationState.new("caller-9", now=100.0, caller_number="+15550100")
    state.slots["order_number"] = "48215"
    state.transcript.append(Turn("user", "where is 48215", 101.0, "check_order_status", 0.9))
    return ActionContext(state=state, domain=DOMAIN, backoffice=None,
                         latest_message={"intent": {"name": "check_order_status",
                                                    "confidence": 0.9}, "entities": []},
                         now=102.0)


def test_remote_client_sends_rasa_request_and_reads_events() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def transport(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        sent.append((url, payload))
        return {"events": [{"event": "slot", "timestamp": None, "name": "order_status",
                            "value": "shipped"},
                           {"event": "slot", "timestamp": None, "name": "handoff_reason",
                            "value": "vip"}],
                "responses": [{"text": "It shipped yesterday.", "buttons": []},
                              {"response": "utter_order_status", "text": None}]}

    client = RemoteActionClient("http://actions:5055/webhook", transport=transport)
    events = client.run("action_check_order_status", _context())
    url, payload = sent[0]
    assert url == "http://actions:5055/webhook"
    assert payload["next_action"] == "action_check_order_status"
    assert payload["sender_id"] == "caller-9"
    assert payload["tracker"]["slots"]["order_number"] == "48215"
    assert payload["tracker"]["latest_message"]["intent"]["name"] == "check_order_status"
    assert [e["event"] for e in payload["tracker"]["events"]] == [
        "action", "session_started", "user"]
    assert "order_number" in payload["domain"]["slots"]
    assert events == [BotMessage("It shipped yesterday."), UtterResponse("utter_order_status"),
                      SlotSet("order_status", "shipped"), HandoffRequested("vip")]


def test_remote_errors_raise() -> None:
    client = RemoteActionClient("http://x/webhook",
                                transport=lambda u, p, t: {"error": "boom", "action_name": "a"})
    with pytest.raises(RemoteActionError):
        client.run("a", _context())


def test_remote_unreachable_raises_remote_action_error() -> None:
    client = RemoteActionClient("http://127.0.0.1:9/webhook", timeout=0.5)
    with pytest.raises(RemoteActionError):
        client.run("a", _context())


def test_registry_can_serve_an_action_remotely() -> None:
    registry = ActionRegistry()
    registry.register("action_x", lambda ctx: [BotMessage("local")])
    client = RemoteActionClient("http://x/webhook",
                                transport=lambda u, p, t: {"events": [], "responses": [
                                    {"text": "remote"}]})
    registry.serve_remotely("action_x", client)
    assert registry.run("action_x", _context()) == [BotMessage("remote")]
    assert registry.run_local("action_x", _context()) == [BotMessage("local")]

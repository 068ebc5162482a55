"""Rasa-shaped JSON literals the tests send to callpilot's action server."""

from __future__ import annotations

from typing import Any

# What Rasa 3.x POSTs to an action server's /webhook (trimmed to the usual fields).
REQUEST: dict[str, Any] = {
    "next_action": "action_check_order_status",
    "sender_id": "caller-1",
    "tracker": {
        "sender_id": "caller-1",
        "slots": {"order_number": "48215", "requested_slot": None, "confirm_cancel": None},
        "latest_message": {
            "intent": {"name": "check_order_status", "confidence": 0.97},
            "entities": [{"entity": "order_number", "start": 18, "end": 23, "value": "48215",
                          "extractor": "RegexEntityExtractor"}],
            "text": "where is my order 48215",
            "message_id": "b7d9",
            "metadata": {},
            "intent_ranking": [{"name": "check_order_status", "confidence": 0.97}],
        },
        "latest_event_time": 1718000000.5,
        "followup_action": None,
        "paused": False,
        "events": [
            {"event": "action", "timestamp": 1718000000.1, "name": "action_session_start",
             "policy": None, "confidence": 1.0},
            {"event": "session_started", "timestamp": 1718000000.1},
            {"event": "action", "timestamp": 1718000000.2, "name": "action_listen"},
            {"event": "user", "timestamp": 1718000000.3, "text": "where is my order 48215",
             "parse_data": {"intent": {"name": "check_order_status", "confidence": 0.97},
                            "entities": []},
             "input_channel": "rest"},
            {"event": "bot", "timestamp": 1718000000.4, "text": "Let me check.",
             "data": {}, "metadata": {}},
        ],
        "latest_input_channel": "rest",
        "active_loop": {},
        "latest_action": {"action_name": "order_form"},
        "latest_action_name": "order_form",
    },
    "domain": {"config": {}, "session_config": {}, "intents": [], "entities": [], "slots": {},
               "responses": {}, "actions": [], "forms": {}, "e2e_actions": []},
    "version": "3.6.21",
}

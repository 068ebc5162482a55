"""What a Rasa server made of a caller's turn, read from its tracker for the trainer's inbox (pure: a tracker as
Rasa 3.6's `GET /conversations/{id}/tracker` returns it)."""

from __future__ import annotations

from callpilot.brains import rasa_reading


def tracker(*events: dict[str, object], intent: dict[str, object] | None = None) -> dict[str, object]:
    return {"sender_id": "s", "latest_message": {"text": "x", "intent": intent or {}}, "events": list(events)}


def test_the_latest_user_messages_intent_and_confidence() -> None:
    found = rasa_reading(tracker({"event": "user", "text": "where is it"}, {"event": "action", "name": "utter_ask"},
                                 intent={"name": "check_order_status", "confidence": 0.42}))
    assert found == ("check_order_status", 0.42, False)


def test_a_handoff_after_the_latest_message_counts_an_earlier_one_does_not() -> None:
    earlier = {"event": "action", "name": "action_handoff"}
    user = {"event": "user", "text": "a person please"}
    assert rasa_reading(tracker(earlier, user, intent={"name": "talk_to_human", "confidence": 0.97}))[2] is False
    assert rasa_reading(tracker(user, earlier, intent={"name": "talk_to_human", "confidence": 0.97}))[2] is True


def test_a_tracker_without_a_reading_gives_nothing_rather_than_failing() -> None:
    assert rasa_reading({}) == (None, None, False)
    assert rasa_reading({"latest_message": {"intent": {"name": "nlu_fallback", "confidence": "high"}}}) == (
        "nlu_fallback", None, False)

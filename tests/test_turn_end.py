"""The end of a caller's turn from what they said: the verdict on a partial transcript (bot/dialogue/turn_end.py)
and how the endpointer and the listener act on it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.dialogue.turn_end import TurnEnd, TurnEndJudge, judge_turn_end
from bot.nlu import NLUEngine
from voice_gateway.asr import AsrPartial, AsrResult, TurnListener
from voice_gateway.vad import EndpointConfig, SpeechEnded, SpeechPaused, VadEvent, VoiceActivityDetector
from voice_gateway.vad.endpointer import Endpointer

ORDER = r"\b4\d{4,7}\b"
REPAIR = r"\b[Rr]\d{6}\b"
ZH_ORDER = r"(?<![0-9])4[0-9]{4,7}(?![0-9])"
PATTERNS = tuple(re.compile(p) for p in (ORDER, REPAIR, ZH_ORDER))


def confident(name: str = "opening_hours", confidence: float = 0.98) -> Any:
    return lambda: {"intent": {"name": name, "confidence": confidence}}


@pytest.mark.parametrize(("words", "verdict"), [
    ("My order number is...", TurnEnd.INCOMPLETE),  # Whisper's own trailing-off mark
    ("I need to change the delivery address,", TurnEnd.INCOMPLETE),
    ("my order number is", TurnEnd.INCOMPLETE),
    ("I want to cancel the", TurnEnd.INCOMPLETE),
    ("I'd like to speak to um", TurnEnd.INCOMPLETE),
    ("yes it is", TurnEnd.COMPLETE),  # an answer, not "my number is"
    ("it's four eight two", TurnEnd.INCOMPLETE),  # the start of an order number
    ("it's four eight two one five.", TurnEnd.COMPLETE),
    ("repair R one zero four", TurnEnd.INCOMPLETE),
    ("repair R104233", TurnEnd.COMPLETE),
    ("where is my order?", TurnEnd.MAY_CONTINUE),  # its number often follows
    ("what's your order number", TurnEnd.MAY_CONTINUE),
    ("I forgot the password for my online account.", TurnEnd.COMPLETE),
    ("What are your opening hours?", TurnEnd.COMPLETE),
    ("thank you", TurnEnd.COMPLETE),
    ("我的订单号是", TurnEnd.INCOMPLETE),
    ("我的订单号是四八二", TurnEnd.INCOMPLETE),
    ("我的订单号是四八二一五", TurnEnd.COMPLETE),
    ("是的", TurnEnd.COMPLETE),  # "yes", though it ends like "是" (is)
    ("帮我查一下订单", TurnEnd.MAY_CONTINUE),
    ("请问你们几点开门", TurnEnd.COMPLETE),
])
def test_the_words_so_far_decide_how_the_turn_looks(words: str, verdict: TurnEnd) -> None:
    assert judge_turn_end(words, confident(), id_patterns=PATTERNS) is verdict


def test_without_a_confident_request_the_usual_silence_decides() -> None:
    assert judge_turn_end("blah blah", confident("out_of_scope", 0.9), id_patterns=PATTERNS) is TurnEnd.UNSURE
    assert judge_turn_end("what are your opening hours", confident(confidence=0.4)) is TurnEnd.UNSURE
    assert judge_turn_end("   ", confident()) is TurnEnd.UNSURE


def test_the_nlu_is_asked_only_when_the_words_alone_do_not_decide() -> None:
    asked: list[str] = []

    def parse() -> dict[str, Any]:
        asked.append("parse")
        return {"intent": {"name": "opening_hours", "confidence": 0.99}}

    assert judge_turn_end("my order number is", parse, id_patterns=PATTERNS) is TurnEnd.INCOMPLETE
    assert asked == []
    assert judge_turn_end("what are your opening hours", parse, id_patterns=PATTERNS) is TurnEnd.COMPLETE
    assert asked == ["parse"]


def test_the_judge_on_the_trained_model(nlu_engine: NLUEngine) -> None:
    judge = TurnEndJudge(nlu_engine, [ORDER, REPAIR])
    assert judge("What are your opening hours?") is TurnEnd.COMPLETE
    assert judge("I want to talk to a real person.") is TurnEnd.COMPLETE
    assert judge("我要转人工") is TurnEnd.COMPLETE
    assert judge("blah blah") is TurnEnd.UNSURE  # never ends a turn sooner on a guess
    assert judge("my order number is") is TurnEnd.INCOMPLETE


def test_the_judge_hears_what_the_nlu_will_read_and_survives_a_broken_model() -> None:
    class Broken:
        def parse(self, text: str) -> dict[str, Any]:
            raise RuntimeError("model swapped out")

    repaired = TurnEndJudge(Broken(), [ORDER], repair=lambda text: text.replace("for 8215", "48215"))
    assert repaired("it's for 8215") is TurnEnd.COMPLETE  # the repaired words are a whole order number
    assert repaired("what are your opening hours") is TurnEnd.UNSURE  # the parse failed: the usual silence


def run(endpointer: Endpointer, frames: str) -> list[tuple[int, VadEvent]]:
    """Feed `frames` ('#' voiced, '.' silent, 20 ms each); the events with the frame index that caused them."""
    return [(i, event) for i, frame in enumerate(frames) for event in endpointer.accept(frame == "#")]


def test_a_turn_held_for_longer_survives_a_pause_the_usual_silence_would_end() -> None:
    endpointer = Endpointer(EndpointConfig(min_speech_ms=100))
    events = run(endpointer, "#" * 20 + "." * 10)  # 200 ms into the silence: the pause
    assert isinstance(events[-1][1], SpeechPaused)
    endpointer.hold_turn_for(1200)  # "my order number is"
    events = run(endpointer, "." * 30 + "#" * 20 + "." * 15)  # 600 ms more silence, then the number
    assert not any(isinstance(event, SpeechEnded) for _, event in events)
    endpointer.hold_turn_for(250)  # the number is whole
    events = run(endpointer, "." * 5)
    ended = [event for _, event in events if isinstance(event, SpeechEnded)]
    assert len(ended) == 1 and ended[0].silence_ms == 250
    # The next turn starts from the usual 500 ms again.
    events = run(endpointer, "#" * 20 + "." * 24)
    assert [event.silence_ms for _, event in events if isinstance(event, SpeechEnded)] == []
    events = run(endpointer, "." * 1)
    assert [event.silence_ms for _, event in events if isinstance(event, SpeechEnded)] == [500]


def test_a_whole_request_ends_its_turn_as_soon_as_it_is_judged() -> None:
    endpointer = Endpointer(EndpointConfig(min_speech_ms=100))
    run(endpointer, "#" * 20 + "." * 12)  # 240 ms of silence already
    endpointer.hold_turn_for(250)
    events = run(endpointer, ".")
    ended = [event for _, event in events if isinstance(event, SpeechEnded)]
    assert len(ended) == 1 and ended[0].silence_ms == 250


def test_an_unsure_verdict_keeps_what_listen_chose() -> None:
    endpointer = Endpointer(EndpointConfig(min_speech_ms=100))
    endpointer.listen(yes_no=True)  # 300 ms after a yes/no question
    run(endpointer, "#" * 20 + "." * 10)
    endpointer.hold_turn_for(1200)
    endpointer.hold_turn_for(None)  # a later pause: nothing sure either way
    events = run(endpointer, "." * 5)
    assert [event.silence_ms for _, event in events if isinstance(event, SpeechEnded)] == [300]


class Words:
    """A recogniser stream that 'hears' a fixed partial at every pause (the listener's contract, not a model)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def accept(self, pcm16: bytes) -> list[AsrResult]:
        return []

    def observe(self, event: VadEvent) -> list[AsrResult]:
        return [AsrPartial(self.text)] if isinstance(event, SpeechPaused) else []

    def flush(self) -> list[AsrResult]:
        return []


class Loud:
    """A classifier: frames with any signal are speech."""

    probability = 0.0

    def is_speech(self, pcm16: bytes) -> bool:
        self.probability = 1.0 if any(pcm16) else 0.0
        return self.probability > 0


def frames(voiced: int, silent: int) -> bytes:
    return b"\x10\x10" * 160 * voiced + b"\x00\x00" * 160 * silent


def test_the_listener_asks_at_each_pause_and_a_failing_judge_changes_nothing() -> None:
    asked: list[str] = []

    def hold(text: str) -> int | None:
        asked.append(text)
        return 1200

    listener = TurnListener(VoiceActivityDetector(Loud(), 8000, EndpointConfig(min_speech_ms=100)),
                            Words("my order number is"), hold)
    events = listener.accept(frames(20, 40))  # 800 ms of silence: held
    assert asked == ["my order number is"]
    assert not any(isinstance(event, SpeechEnded) for event in events)
    events = listener.accept(frames(0, 25))
    assert [e.silence_ms for e in events if isinstance(e, SpeechEnded)] == [1200]

    def broken(text: str) -> int | None:
        raise RuntimeError("no model")

    listener = TurnListener(VoiceActivityDetector(Loud(), 8000, EndpointConfig(min_speech_ms=100)),
                            Words("anything"), broken)
    events = listener.accept(frames(20, 30))
    assert [e.silence_ms for e in events if isinstance(e, SpeechEnded)] == [500]

"""A call's ear runs on the event loop unless the audio may end a pause or a turn (when Whisper decodes):
`TurnListener.may_decode` must be True for every frame that decodes, and False for most others."""

from __future__ import annotations

import asyncio

import numpy as np

from voice_gateway.asr import SegmentedStream, Transcript, TurnListener
from voice_gateway.audio import resample_pcm16
from voice_gateway.tts import HibariTts
from voice_gateway.vad import EndpointConfig, SileroVad, SpeechEnded, VoiceActivityDetector

RATE = 8000
FRAME = 320


class CountingTranscriber:
    def __init__(self) -> None:
        self.decodes = 0

    def transcribe(self, samples: np.ndarray) -> Transcript:
        self.decodes += 1
        return Transcript("words", 0.9)


def speech(text: str) -> bytes:
    async def render() -> bytes:
        chunks = [chunk async for chunk in HibariTts().synthesize(text)]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, RATE)

    return asyncio.run(render())


def test_every_decode_happens_on_a_frame_flagged_as_may_decode() -> None:
    transcriber = CountingTranscriber()
    detector = VoiceActivityDetector.create(SileroVad(), RATE, EndpointConfig(min_speech_ms=240))
    listener = TurnListener(detector, SegmentedStream(transcriber, RATE))
    quiet = bytes(RATE * 2)
    # Two turns, the first with a pause inside it; 10 ms chunks, so frames straddle chunk edges.
    audio = quiet + speech("where is my order") + bytes(RATE * 2 // 2) + speech("please") + quiet * 2
    audio += speech("I want to talk to a human") + quiet * 2
    flagged = 0
    for offset in range(0, len(audio), FRAME // 2):
        chunk = audio[offset : offset + FRAME // 2]
        before = transcriber.decodes
        may = listener.may_decode(chunk)
        listener.accept(chunk)
        flagged += may
        assert may or transcriber.decodes == before, f"an unflagged chunk decoded at {offset / 16:.0f} ms"
    assert transcriber.decodes >= 3  # pauses and ends of both turns were decoded
    assert flagged < len(audio) // (FRAME // 2) // 10  # the rest ran inline


def test_nothing_is_flagged_outside_a_turn() -> None:
    detector = VoiceActivityDetector.create(SileroVad(), RATE)
    listener = TurnListener(detector, SegmentedStream(CountingTranscriber(), RATE))
    assert not any(listener.may_decode(bytes(FRAME)) or listener.accept(bytes(FRAME)) for _ in range(200))


def test_the_end_of_a_turn_right_after_its_pause_runs_inline() -> None:
    # Under load the ASR threads' queue is hundreds of ms long: the turn's end must not wait in it when the
    # pause's decode already has the words.
    transcriber = CountingTranscriber()
    detector = VoiceActivityDetector.create(SileroVad(), RATE, EndpointConfig(min_speech_ms=240))
    listener = TurnListener(detector, SegmentedStream(transcriber, RATE))
    audio = bytes(RATE * 2) + speech("where is my order") + bytes(RATE * 4)
    flagged_at_end: list[bool] = []
    for offset in range(0, len(audio), FRAME):
        chunk = audio[offset : offset + FRAME]
        may = listener.may_decode(chunk)
        events = listener.accept(chunk)
        if any(isinstance(event, SpeechEnded) for event in events):
            flagged_at_end.append(may)
    assert flagged_at_end == [False]
    assert transcriber.decodes == 1  # the pause's decode gave the turn its words

"""VAD and endpointing: the endpointer on frame decisions, then Silero and WebRTC on synthesised speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vad_fixtures import detect, silero_vad  # noqa: F401  (the `silero` fixture)
from voice_gateway.testing import FRAME, RATE, espeak, line_noise, to_pcm
from voice_gateway.vad import (
    EndpointConfig,
    Endpointer,
    NoInput,
    SileroVad,
    SpeechEnded,
    SpeechLikely,
    SpeechPaused,
    SpeechStarted,
    VadEvent,
    WebRtcVad,
)


def run(
    endpointer: Endpointer, pattern: list[tuple[bool, int]], *, confident: bool | None = None
) -> list[tuple[int, VadEvent]]:
    """Feed (voiced, milliseconds) runs; return (time after the frame, event) pairs."""
    out: list[tuple[int, VadEvent]] = []
    for voiced, ms in pattern:
        for _ in range(ms // endpointer.config.frame_ms):
            events = endpointer.accept(voiced, confident)
            out.extend((endpointer.now_ms, event) for event in events)
    return out


def test_turn_events_in_order_with_times() -> None:
    events = run(Endpointer(), [(False, 500), (True, 1000), (False, 1000)])
    assert events == [
        (620, SpeechLikely(start_ms=500)),
        (700, SpeechStarted(start_ms=500)),
        (1700, SpeechPaused(start_ms=500, end_ms=1500)),
        (2000, SpeechEnded(start_ms=500, end_ms=1500)),
    ]
    ended = events[-1][1]
    assert isinstance(ended, SpeechEnded) and ended.duration_ms == 1000


def test_endpoint_fires_exactly_after_configured_silence() -> None:
    config = EndpointConfig(end_of_turn_silence_ms=900, short_end_of_turn_silence_ms=400)
    events = run(Endpointer(config), [(True, 600), (False, 2000)])
    assert [(t, e) for t, e in events if isinstance(e, SpeechEnded)] == [(1500, SpeechEnded(0, 600))]


def test_yes_no_question_ends_the_turn_sooner_once() -> None:
    endpointer = Endpointer()
    endpointer.listen(yes_no=True)
    first = run(endpointer, [(True, 400), (False, 1000)])
    assert (700, SpeechEnded(0, 400)) in first  # 300 ms after the speech
    second = run(endpointer, [(True, 400), (False, 1000)])
    assert (1400 + 400 + 500, SpeechEnded(1400, 1800)) in second


def test_a_breath_mid_sentence_does_not_end_the_turn() -> None:
    events = run(Endpointer(), [(True, 800), (False, 300), (True, 600), (False, 1000)])
    assert [e for _, e in events if isinstance(e, SpeechEnded)] == [SpeechEnded(0, 1700)]
    assert [t for t, e in events if isinstance(e, SpeechPaused)] == [1000, 1900]  # decoded early, twice


def test_confident_speech_is_likely_before_the_turn_starts() -> None:
    # Barge-in: 120 ms of confident speech; the turn itself needs min_speech_ms (200 here).
    events = run(Endpointer(), [(False, 100), (True, 300)])
    assert events == [(220, SpeechLikely(start_ms=100)), (300, SpeechStarted(start_ms=100))]
    # Voiced but unsure frames (a cough, a hum) never make speech likely, even when they become a turn.
    unsure = run(Endpointer(), [(True, 300)], confident=False)
    assert [type(e) for _, e in unsure] == [SpeechStarted]
    # Only the confident frames of the onset count.
    endpointer = Endpointer(EndpointConfig(min_speech_ms=400))
    mixed = run(endpointer, [(True, 100)]) + run(endpointer, [(True, 60)], confident=False)
    assert mixed == [] and run(endpointer, [(True, 20)]) == [(180, SpeechLikely(start_ms=0))]


def test_short_noises_and_gaps() -> None:
    endpointer = Endpointer()
    assert run(endpointer, [(False, 200), (True, 100), (False, 500), (True, 100), (False, 1000)]) == []
    # A short gap inside the onset does not lose it; a pause shorter than the endpoint does not end the turn.
    events = run(endpointer, [(True, 100), (False, 60), (True, 200), (False, 400), (True, 300), (False, 800)])
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechLikely", "SpeechStarted", "SpeechPaused", "SpeechPaused", "SpeechEnded"]


def test_no_input_fires_once_and_speech_disarms_it() -> None:
    endpointer = Endpointer(EndpointConfig(no_input_timeout_ms=3000))
    endpointer.listen()
    events = run(endpointer, [(False, 8000)])
    assert events == [(3000, NoInput(at_ms=3000, waited_ms=3000))]
    endpointer.listen(no_input_timeout_ms=1000)
    assert [type(e) for _, e in run(endpointer, [(True, 300), (False, 3000)])] == [
        SpeechLikely,
        SpeechStarted,
        SpeechPaused,
        SpeechEnded,
    ]
    endpointer.listen()
    endpointer.stop_listening()
    assert run(endpointer, [(False, 8000)]) == []


def test_max_speech_forces_an_end() -> None:
    config = EndpointConfig(max_speech_ms=2000)
    events = run(Endpointer(config), [(True, 5000)])
    assert [e for _, e in events if isinstance(e, SpeechEnded)] == [SpeechEnded(0, 2000), SpeechEnded(2000, 4000)]


def test_config_rejects_inconsistent_timings() -> None:
    with pytest.raises(ValueError):
        EndpointConfig(pause_ms=500, short_end_of_turn_silence_ms=400)
    with pytest.raises(ValueError, match="barge_in"):
        EndpointConfig(barge_in_probability=0.0)


# Real classifiers on real(istic) audio.


@pytest.fixture(scope="module")
def speech_pcm() -> bytes:
    return to_pcm(np.concatenate([line_noise(1000), espeak("I would like to check my order please"), line_noise(1500)]))


@pytest.mark.parametrize("backend_name", ["silero", "webrtc"])
def test_detects_start_and_end_of_synthesised_speech(backend_name: str, silero: SileroVad, speech_pcm: bytes) -> None:
    backend = silero if backend_name == "silero" else WebRtcVad(3)
    events = detect(backend, speech_pcm)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(starts) == 1 and len(ends) == 1
    speech_end_ms = (len(speech_pcm) // 2 * 1000 // RATE) - 1500
    assert 900 <= starts[0].start_ms <= 1200
    assert speech_end_ms - 300 <= ends[0].end_ms <= speech_end_ms + 200
    # Odd-sized chunks (e.g. a transport's 17 ms packets) give the same events.
    assert detect(backend, speech_pcm, chunk=271) == events


@pytest.mark.parametrize("backend_name", ["silero", "webrtc"])
def test_ignores_a_click_and_a_short_noise_burst(backend_name: str, silero: SileroVad) -> None:
    backend = silero if backend_name == "silero" else WebRtcVad(3)
    rng = np.random.default_rng(7)
    burst = rng.normal(0, 8000, RATE // 10)  # 100 ms of loud noise
    click = np.zeros(RATE // 10)
    click[:40] = 20000 * np.hanning(40)  # a 5 ms knock, then 95 ms of quiet
    pcm = to_pcm(np.concatenate([line_noise(500), burst, line_noise(1000), click, line_noise(1000)]))
    assert detect(backend, pcm) == []


def test_silero_scores_speech_above_silence(silero: SileroVad) -> None:
    classifier = silero.classifier(RATE)
    speech = to_pcm(espeak("hello there")[: RATE // 2])
    quiet = to_pcm(line_noise(500))
    assert not any(classifier.is_speech(quiet[i : i + FRAME]) for i in range(0, len(quiet), FRAME))
    assert classifier.probability < 0.2
    decisions = [classifier.is_speech(speech[i : i + FRAME]) for i in range(0, len(speech), FRAME)]
    assert decisions[-1] and classifier.probability > 0.5
    with pytest.raises(ValueError):
        silero.classifier(44100)


def _feed(classifier: object, pcm: bytes) -> list[bool]:
    return [classifier.is_speech(pcm[i : i + FRAME]) for i in range(0, len(pcm), FRAME)]  # type: ignore[attr-defined]


def test_silero_does_not_run_the_model_on_a_silent_line(silero: SileroVad) -> None:
    """A caller listening on a silent line (digital zero, or noise under -60 dBFS) costs no model run; a noisy
    line still goes through the model (and is not speech), and speech is found as without the shortcut."""
    classifier = silero.classifier(RATE)
    assert not any(_feed(classifier, bytes(RATE * 2)) + _feed(classifier, to_pcm(line_noise(2000, level=10))))
    assert classifier.model_runs == 0 and classifier.probability == 0.0
    noisy = silero.classifier(RATE)
    assert not any(_feed(noisy, to_pcm(line_noise(1000, level=300))))  # -40 dBFS: the model decides
    assert noisy.model_runs == 1000 // 32
    always = SileroVad(quiet_dbfs=None)
    every = always.classifier(RATE)
    _feed(every, bytes(RATE * 2))  # one second
    assert every.model_runs == 1000 // 32
    # Speech after a long silence: the same turn with and without the shortcut.
    pcm = to_pcm(np.concatenate([np.zeros(RATE * 2), espeak("where is my order"), np.zeros(RATE)]))
    gated, ungated = detect(silero, pcm), detect(always, pcm)
    assert [type(e) for e in gated] == [type(e) for e in ungated] and any(isinstance(e, SpeechEnded) for e in gated)
    for mine, theirs in zip(gated, ungated, strict=True):
        assert abs(mine.start_ms - theirs.start_ms) <= 40  # type: ignore[union-attr]

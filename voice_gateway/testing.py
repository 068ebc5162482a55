"""A harness for voice tests and benchmarks (like `handoff.testing`): calls that read like conversations.

- `PhoneCall(services)`: one call on an in-memory Twilio line, in audio time, as fast as the machine allows:
  `await call.greeting()`, `await call.say("where is my order")`, `await call.press("5")`,
  `await call.expect_bot("opening hours")`; `heard` is what the caller heard (a frame per frame sent).
- `ScriptedHandoff`: the handoff side as a test plays it (updates and agent audio pushed by the test).
- `TwilioCaller`: a caller in real time against a running server's `/media/twilio`, on its own thread.
- Synthetic speech and sounds: `espeak`, `espeak_wav`, `read_pcm`, `tts_speech`, `speak_8k`, `silence`, `pause`,
  `phone_audio`, `line_noise`, `to_pcm`, `cough`, `voiced_cough`, `door_click`, `tone_frames`;
  measures: `rms` (voice_gateway.audio's), `dominant_hz`.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import threading
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np

from bot.dialogue import HandoffDecision
from voice_gateway.audio import pcm16_to_float, resample_pcm16
from voice_gateway.audio import rms as rms  # a measure of the harness (re-exported)
from voice_gateway.audio.g711 import ulaw_decode, ulaw_encode
from voice_gateway.call_log import LifecycleKind
from voice_gateway.caller_lines import InMemoryTwilioLine, dial_twilio
from voice_gateway.events import AudioOut
from voice_gateway.pipeline import CallPipeline, VoiceServices
from voice_gateway.pipeline.handoff_port import Hold, LegUpdate
from voice_gateway.transports import CallConnection

RATE = 8000
FRAME = RATE // 50 * 2  # bytes of PCM16 in 20 ms at 8 kHz


# Speech and signals.

def espeak_wav(path: Path, text: str, rate: int, *, pad_s: float = 0.0, voice: str | None = None) -> Path:
    """espeak-ng speech as 16-bit mono PCM WAV at `rate`, with `pad_s` of silence after it."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", *(["-v", voice] if voice else []), "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path), "pad", "0", str(pad_s)],
                   check=True)
    return path


def espeak(text: str, voice: str = "en-us", rate: int = RATE) -> np.ndarray:
    """espeak-ng speech as float samples at `rate` (scipy's polyphase resampler, as a phone line's codec would)."""
    from scipy.signal import resample_poly

    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        source = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16).astype(np.float32)
    return np.asarray(resample_poly(samples, rate, source))


def heard_by_recogniser(pcm16: bytes, rate: int = RATE) -> np.ndarray:
    """What reaches the recogniser of a phone call: 8 kHz mu-law, back to 16 kHz float samples."""
    line = ulaw_decode(ulaw_encode(resample_pcm16(pcm16, rate, 8000)))
    return pcm16_to_float(resample_pcm16(line, 8000, 16000))


def pause(ms: int, rate: int = RATE) -> np.ndarray:
    """Float samples of digital silence, to join with `espeak` speech."""
    return np.zeros(rate * ms // 1000)


def phone_audio(*parts: np.ndarray) -> bytes:
    """Float sample runs joined, with faint line noise, as PCM16."""
    audio = np.concatenate(parts)
    audio = audio + np.random.default_rng(0).normal(0, 20, audio.size)
    return bytes(np.clip(audio, -32768, 32767).astype(np.int16).tobytes())


def silence(seconds: float, rate: int = RATE) -> bytes:
    """Digital silence as PCM16."""
    return bytes(int(seconds * rate) * 2)


def to_pcm(samples: np.ndarray) -> bytes:
    return bytes(np.clip(samples, -32768, 32767).astype(np.int16).tobytes())


def line_noise(ms: int, level: float = 30.0, rate: int = RATE) -> np.ndarray:
    """A quiet phone line: faint noise rather than digital zero."""
    return np.random.default_rng(ms).normal(0, level, rate * ms // 1000)


def band(noise: np.ndarray, low: float, high: float, rate: int = RATE) -> np.ndarray:
    from scipy.signal import butter, lfilter

    b, a = butter(2, [low / (rate / 2), high / (rate / 2)], "band")
    return np.asarray(lfilter(b, a, noise))


def cough(ms: int, level: float, seed: int, rate: int = RATE) -> np.ndarray:
    """A burst of breath noise: 10 ms attack, 80 ms decay."""
    t = np.arange(rate * ms // 1000) / rate
    noise = band(np.random.default_rng(seed).normal(0, 1, t.size), 300, 3000, rate)
    return np.asarray(level * noise / np.abs(noise).max() * (1 - np.exp(-t / 0.01)) * np.exp(-t / 0.08))


def voiced_cough(ms: int, rate: int = RATE) -> np.ndarray:
    """A cough with a vocal-fold buzz in it (140 Hz harmonics), the hardest to tell from a word."""
    t = np.arange(rate * ms // 1000) / rate
    harmonics = np.sum([np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)], axis=0)
    buzz = band(harmonics, 400, 2500, rate)
    envelope = (1 - np.exp(-t / 0.01)) * np.exp(-t / 0.06)
    return np.asarray(15000 * envelope * 0.6 * buzz / np.abs(buzz).max() + 0.4 * cough(ms, 15000, 5, rate))


def door_click(rate: int = RATE) -> np.ndarray:
    """A latch: two ringing knocks 40 ms apart."""
    t = np.arange(rate // 10) / rate
    out = 15000 * np.sin(2 * np.pi * 900 * t) * np.exp(-t / 0.004)
    out[rate // 25 :] += (
        6000 * np.sin(2 * np.pi * 600 * t[: out.size - rate // 25]) * np.exp(-t[: out.size - rate // 25] / 0.006)
    )
    return out


def speak_8k(services: VoiceServices, text: str) -> bytes:
    """`tts_speech` outside an event loop."""
    return asyncio.run(tts_speech(services, text))


def trimmed(pcm: bytes, floor: int = 300) -> bytes:
    """The voice's own leading and trailing silence cut off, so a pause is as long as a test says."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples) > floor)
    return samples[loud[0] : loud[-1] + 1].tobytes()


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as reader:
        return bytes(reader.readframes(reader.getnframes()))


async def tts_speech(services: VoiceServices, text: str, rate: int = RATE) -> bytes:
    """Caller speech in the call's own offline TTS voice, at `rate`."""
    chunks = [chunk async for chunk in services.tts.synthesize(text)]
    return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, rate)


def dominant_hz(pcm: bytes, rate: int = RATE) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def tone_frames(seconds: float, hz: float = 300.0, rate: int = 16000) -> list[bytes]:
    """A steady tone in 20 ms frames: an 'agent' unlike anything the bot or the hold music plays."""
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2").tobytes()
    step = rate // 50 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


# The handoff side, scripted.

class ScriptedHandoff:
    """A `HandoffPort` the test drives: push `LegUpdate`s to `pushed`, agent audio (or `Hold`) to `agent_audio`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, HandoffDecision]] = []
        self.heard_by_agent = bytearray()
        self.hung_up: list[str] = []
        self.pushed: asyncio.Queue[LegUpdate] = asyncio.Queue()
        self.agent_audio: asyncio.Queue[bytes | Hold] = asyncio.Queue()
        self.keys_to_agent: list[str] = []
        self.callbacks: list[str] = []
        self.said: list[tuple[str, str]] = []
        self.beats = 0  # the caller side saying it is still there

    async def request(self, call_id: str, decision: HandoffDecision, *, language: str) -> None:
        self.requests.append((call_id, decision))

    async def updates(self, call_id: str) -> AsyncIterator[LegUpdate]:
        while True:
            yield await self.pushed.get()

    async def caller_hung_up(self, call_id: str) -> None:
        self.hung_up.append(call_id)

    async def send_to_agent(self, call_id: str, pcm16: bytes) -> None:
        self.heard_by_agent += pcm16

    async def from_agent(self, call_id: str) -> AsyncIterator[bytes | Hold]:
        while True:
            yield await self.agent_audio.get()

    async def key_to_agent(self, call_id: str, digit: str) -> None:
        self.keys_to_agent.append(digit)

    async def request_callback(self, call_id: str) -> str:
        self.callbacks.append(call_id)
        return "+16175550142"

    async def transcript_line(self, call_id: str, speaker: str, text: str) -> None:
        self.said.append((speaker, text))

    async def caller_here(self, call_id: str) -> None:
        self.beats += 1


# One call in audio time.

class PhoneCall:
    """One call in audio time: the test feeds caller audio frame by frame and reads what the caller heard."""

    def __init__(self, services: VoiceServices, port: ScriptedHandoff | None = None, *, called: str = "") -> None:
        self.services = services
        self.port = port or ScriptedHandoff()
        self.pipelines: list[CallPipeline] = []
        self.heard = bytearray()  # what the caller heard, one entry per caller frame (silence if nothing came)

        def new_handler(line: CallConnection) -> CallPipeline:
            self.pipelines.append(CallPipeline(line, services))
            return self.pipelines[0]

        self.line = InMemoryTwilioLine(new_handler, called=called)

    @property
    def pipeline(self) -> CallPipeline:
        return self.pipelines[0]

    async def agent_says(self, frame: bytes) -> None:
        """One 20 ms frame of the agent's voice (16 kHz) on its way to the caller (a subclass may send it
        through the real audio bridge instead)."""
        self.port.agent_audio.put_nowait(frame)

    async def feed(self, pcm: bytes = b"", *, seconds: float = 0.0, agent: list[bytes] | None = None) -> bytes:
        """Send `pcm` then silence up to `seconds`; one agent frame (if any left) goes with each caller frame.
        Returns what the caller heard meanwhile."""
        audio = pcm + bytes(max(0, int(seconds * RATE) * 2 - len(pcm)))
        start = len(self.heard)
        for i in range(0, len(audio) - FRAME + 1, FRAME):
            if agent:
                await self.agent_says(agent.pop(0))
            self.line.send_audio(audio[i : i + FRAME])
            await self.line.flush()
            for _ in range(3):
                await asyncio.sleep(0)  # the leg's tasks (updates, agent audio) take their turn
            got = b"".join(e.pcm for e in self.line.events() if isinstance(e, AudioOut))
            self.heard += got.ljust(FRAME, b"\x00") if len(got) <= FRAME else got
            if self.line.closed:
                break
        return bytes(self.heard[start:])

    async def until(self, done: Callable[[], bool], *, limit_s: float = 60.0) -> None:
        """Feed silence until `done()` is true, at most ~10x faster than real time (TTS needs real time to run)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while loop.time() < deadline:
            if done():
                return
            await self.feed(seconds=0.1)
            await asyncio.sleep(0.01)
        leg = self.pipeline.leg
        raise AssertionError(
            f"not done after {limit_s} s; leg {leg.state if leg else None}, "
            f"phase {self.pipeline.state.phase if self.pipeline.state else None}, bot said {self.bot_said()}"
        )

    async def greeting(self) -> str:
        """Wait for the greeting (and a recording notice before it, if any) to play out; returns what was said."""
        await self.feed(seconds=1.0)
        await self.until(self.quiet)
        return " ".join(self.bot_said())

    async def say(self, text: str, *, then_s: float = 1.5) -> PhoneCall:
        """The caller says `text` (the call's TTS voice), then stays quiet for `then_s`."""
        pcm = await tts_speech(self.services, text)
        await self.feed(pcm, seconds=len(pcm) / 2 / RATE + then_s)
        return self

    async def press(self, digit: str) -> PhoneCall:
        self.line.send_dtmf(digit)
        await self.feed(seconds=0.2)
        return self

    async def expect_bot(self, words: str, *, limit_s: float = 30.0) -> str:
        """Wait until the bot has said something containing `words` (case-insensitive) since this was asked."""
        seen = len(self.bot_said())
        found: list[str] = []

        def said() -> bool:
            found[:] = [line for line in self.bot_said()[seen:] if words.lower() in line.lower()]
            return bool(found)

        await self.until(said, limit_s=limit_s)
        return found[0]

    def bot_said(self) -> list[str]:
        log = self.pipeline.services.call_log.events
        return [str(e.data["text"]) for e in log if e.kind is LifecycleKind.TURN and e.data.get("speaker") == "bot"]

    def caller_turns(self) -> int:
        """The caller's turns with the bot (lines said to an agent, `leg: agent`, are not turns)."""
        log = self.pipeline.services.call_log.events
        return sum(1 for e in log if e.kind is LifecycleKind.TURN and e.data.get("speaker") == "caller"
                   and e.data.get("leg") != "agent")

    def quiet(self) -> bool:
        state = self.pipeline.state
        return state is not None and state.phase.value == "listening"


# A caller in real time against a running server.

class TwilioCaller(threading.Thread):
    """A Twilio caller in real time on its own event loop: silence, the request, then silence until hung up.
    The test may add keys (`keys`) and speech (`lines`, 8 kHz PCM16) from its own thread."""

    def __init__(self, url: str, speech: bytes, *, speak_at_s: float, limit_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.speech, self.speak_at_s, self.limit_s = url, speech, speak_at_s, limit_s
        self.heard = bytearray()  # one frame of what the caller heard per frame it sent (silence if nothing)
        self.closed_by_server = False
        self.error: BaseException | None = None
        self.keys: list[str] = []
        self.lines: list[bytes] = []
        self.done = threading.Event()  # set it to hang up before the script's end

    def run(self) -> None:
        try:
            asyncio.run(self._call())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _call(self) -> None:
        lead = bytes(int(self.speak_at_s * RATE) * 2)
        audio = lead + self.speech + bytes(int(self.limit_s * RATE) * 2)
        loop = asyncio.get_running_loop()
        async with dial_twilio(self.url) as line:
            started = loop.time()
            for index in range(len(audio) // FRAME):
                if self.done.is_set():
                    break
                while self.keys:
                    line.send_dtmf(self.keys.pop(0))
                if self.lines:  # said now, in place of the script's silence
                    at = index * FRAME
                    said = self.lines.pop(0)
                    audio = audio[:at] + said + audio[at + len(said):]
                line.send_audio(audio[index * FRAME : (index + 1) * FRAME])
                await line.flush()
                got = b"".join(e.pcm for e in line.events() if isinstance(e, AudioOut))
                self.heard += got.ljust(FRAME, b"\x00") if len(got) <= FRAME else got
                if line.closed:
                    self.closed_by_server = True
                    return
                await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - loop.time()))
            await line.hang_up()

"""The `callpilot call` command: a simulated caller against a running server (Twilio websocket or
AudioSocket), the bot's audio saved, and both sides of the conversation printed with their timings."""

from __future__ import annotations

import asyncio
import uuid
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from callpilot.settings import Settings
from voice_gateway.events import DTMF_DIGITS
from voice_gateway.simulated_caller import CallerReport, CallerScript, dial_audiosocket, dial_twilio, run_caller
from voice_gateway.transports.audiosocket_caller import caller_uuid
from voice_gateway.tts.formats import resample_pcm16
from voice_gateway.twiml import MEDIA_STREAM_PATH


def read_caller_wav(path: Path) -> bytes:
    """A WAV file as 8 kHz mono PCM16 (channels mixed down)."""
    with wave.open(str(path)) as reader:
        if reader.getsampwidth() != 2:
            raise ValueError(f"{path}: need 16-bit PCM, got {8 * reader.getsampwidth()}-bit")
        channels, rate = reader.getnchannels(), reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").reshape(-1, channels)
    mono = samples.astype(np.float64).mean(axis=1).astype("<i2").tobytes()
    return resample_pcm16(mono, rate, 8000)


def parse_keys(specs: list[str]) -> tuple[tuple[str, float], ...]:
    """["1@3.5", "#@6"] -> (("1", 3.5), ("#", 6.0))."""
    keys = []
    for spec in specs:
        digit, sep, at = spec.partition("@")
        if not sep or len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ValueError(f"--dtmf {spec!r}: expected DIGIT@SECONDS, e.g. 1@3.5")
        keys.append((digit, float(at)))
    return tuple(keys)


def _spans(pcm: bytes) -> list[tuple[float, float]]:
    report = CallerReport(bot_audio=bytearray(pcm))
    return report.bot_spans_ms()


def _transcriber() -> Callable[[bytes], str]:
    """Transcribe a stretch of 8 kHz audio with the offline ASR (for printing the conversation)."""
    from voice_gateway.asr import AsrFinal, AsrSettings, TurnListener, load_engine
    from voice_gateway.vad import SileroVad, VoiceActivityDetector

    engine, vad = load_engine(AsrSettings()), SileroVad()

    def transcribe(pcm: bytes) -> str:
        listener = TurnListener(VoiceActivityDetector.create(vad, 8000), engine.stream(8000))
        results = listener.accept(pcm + bytes(16000)) + listener.flush()
        return " ".join(r.text for r in results if isinstance(r, AsrFinal)).strip()

    return transcribe


def place_call(
    settings: Settings,
    wav: Path,
    *,
    transport: str = "twilio",
    dtmf: list[str] | None = None,
    realtime: bool = True,
    out: Path = Path("bot.wav"),
    url: str | None = None,
    tail_s: float = 20.0,
    transcribe: bool = True,
    caller: str | None = None,
) -> CallerReport:
    """Dial the server, play `wav` (then silence), save the bot's audio and print both sides with timings."""
    audio = read_caller_wav(wav)
    script = CallerScript(audio, parse_keys(dtmf or []), tail_s=tail_s, realtime=realtime)
    base = url or f"http://{settings.host}:{settings.port}"

    async def dial() -> CallerReport:
        if transport == "twilio":
            ws_url = base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + MEDIA_STREAM_PATH
            async with dial_twilio(ws_url, **({"caller": caller} if caller else {})) as line:
                return await run_caller(line, script)
        if transport == "audiosocket":
            # The caller id travels in the UUID, as the README's dialplan puts it there.
            call_uuid = caller_uuid(caller, uuid.uuid4().hex) if caller else None
            async with dial_audiosocket(settings.host, settings.audiosocket_port, call_uuid=call_uuid) as phone:
                return await run_caller(phone, script)
        raise ValueError(f"unknown transport {transport!r}: use twilio or audiosocket")

    report = asyncio.run(dial())
    with wave.open(str(out), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(bytes(report.bot_audio))
    text = _transcriber() if transcribe else None
    lines: list[tuple[float, str]] = []
    for who, pcm in (("caller", audio), ("bot", bytes(report.bot_audio))):
        for start, end in _spans(pcm):
            said = text(pcm[int(start * 16) : int(end * 16)]) if text else ""
            lines.append((start, f"{start / 1000:7.2f}-{end / 1000:6.2f}s {who:>6}: {said}"))
    lines += [(at, f"{at / 1000:7.2f}s        caller: [key {digit}]") for digit, at in report.keys_ms]
    lines += [(at, f"{at / 1000:7.2f}s           bot: [playback cleared: barge-in]") for at in report.clears_ms]
    for _, line in sorted(lines):
        print(line)
    ended = "the bot hung up" if report.hung_up_by_bot_ms is not None else "the caller hung up"
    print(f"{ended}; bot audio saved to {out}")
    return report

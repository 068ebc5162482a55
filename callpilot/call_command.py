"""The `callpilot call` command: a simulated caller against a running server (Twilio websocket or
AudioSocket), the bot's audio saved under the results folder, and both sides of the conversation printed with
their timings: the caller, what was heard of the bot (speech recognition of its audio) and the bot's own words
(from the server's call log)."""

from __future__ import annotations

import asyncio
import time
import uuid
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from callpilot.settings import Settings
from voice_gateway.audio import resample_pcm16
from voice_gateway.call_log import LifecycleKind, read_call_log
from voice_gateway.events import DTMF_DIGITS
from voice_gateway.simulated_caller import CallerReport, CallerScript, dial_audiosocket, dial_twilio, run_caller
from voice_gateway.transports.audiosocket_caller import caller_uuid
from voice_gateway.twiml import MEDIA_STREAM_PATH

GREETING_WAIT_S = 30.0  # --wait-for-greeting: the longest silence before the caller speaks anyway


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


def bot_lines_from_log(path: Path, call_id: str, *, wait_s: float = 3.0) -> list[tuple[float, str, bool]] | None:
    """The bot's own words in the call, in order, from the server's call log: (seconds into the call when it was
    logged, i.e. played out or cut off; text; interrupted). None when the log is not readable here (the server
    writes it elsewhere); waits for the call's `ended`."""
    if not path.is_file():
        return None
    deadline = time.monotonic() + wait_s
    while True:
        events = [e for e in read_call_log(path) if e.call_id == call_id]
        if any(e.kind is LifecycleKind.ENDED for e in events) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if not events:
        return None
    return [(e.call_ms / 1000, str(e.data.get("planned") or e.data.get("text") or ""), bool(e.data.get("interrupted")))
            for e in events if e.kind is LifecycleKind.TURN and e.data.get("speaker") == "bot"
            and str(e.data.get("planned") or e.data.get("text") or "").strip()]


def place_call(
    settings: Settings,
    wav: Path,
    *,
    transport: str = "twilio",
    dtmf: list[str] | None = None,
    realtime: bool = True,
    out: Path | None = None,
    url: str | None = None,
    tail_s: float = 20.0,
    transcribe: bool = True,
    caller_number: str | None = None,
    wait_for_greeting: bool = False,
) -> CallerReport:
    """Dial the server, play `wav` (then silence), save the bot's audio (default:
    `<results_dir>/calls/<call id>-bot.wav`) and print both sides with timings: what the caller said, what was
    heard of the bot (ASR of its audio), and the bot's own words from the server's call log when it is readable."""
    audio = read_caller_wav(wav)
    script = CallerScript(audio, parse_keys(dtmf or []), tail_s=tail_s, realtime=realtime,
                          wait_for_greeting_s=GREETING_WAIT_S if wait_for_greeting else None)
    base = url or f"http://{settings.host}:{settings.port}"
    call_id = ""

    async def dial() -> CallerReport:
        nonlocal call_id
        if transport == "twilio":
            ws_url = base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + MEDIA_STREAM_PATH
            async with dial_twilio(ws_url, **({"caller": caller_number} if caller_number else {})) as line:
                call_id = line.call_id
                return await run_caller(line, script)
        if transport == "audiosocket":
            # The caller id travels in the UUID, as the README's dialplan puts it there.
            call_uuid = caller_uuid(caller_number, uuid.uuid4().hex) if caller_number else None
            async with dial_audiosocket(settings.host, settings.audiosocket_port, call_uuid=call_uuid) as phone:
                call_id = phone.call_id
                return await run_caller(phone, script)
        raise ValueError(f"unknown transport {transport!r}: use twilio or audiosocket")

    report = asyncio.run(dial())
    out = out or settings.results_dir / "calls" / f"{call_id}-bot.wav"
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(bytes(report.bot_audio))
    text = _transcriber() if transcribe else None
    lines: list[tuple[float, str]] = []
    offset = report.audio_start_ms
    for start, end in _spans(audio):
        said = text(audio[int(start * 16) : int(end * 16)]) if text else ""
        lines.append((offset + start, f"{(offset + start) / 1000:7.2f}-{(offset + end) / 1000:6.2f}s  caller: {said}"))
    bot = bytes(report.bot_audio)
    for start, end in _spans(bot):
        heard = text(bot[int(start * 16) : int(end * 16)]) if text else ""
        lines.append((start, f"{start / 1000:7.2f}-{end / 1000:6.2f}s   heard: {heard}"))
    lines += [(at, f"{at / 1000:7.2f}s         caller: [key {digit}]") for digit, at in report.keys_ms]
    lines += [(at, f"{at / 1000:7.2f}s          heard: [the bot stopped: barge-in]") for at in report.clears_ms]
    said_by_bot = bot_lines_from_log(settings.call_log, call_id) if call_id else None
    print(f"call {call_id}")
    for _, line in sorted(lines):
        print(line)
    if said_by_bot is not None:
        print("what the bot said (its own words, from the server's call log):")
        for _, words, cut in said_by_bot:
            print(f"            bot: {words}{' (cut off by the caller)' if cut else ''}")
    else:
        print(f"(the bot's own words are not shown: the call log {settings.call_log} is not readable here; "
              "run from the server's folder or set CALLPILOT_CALL_LOG)")
    ended = "the bot hung up" if report.hung_up_by_bot_ms is not None else "the caller hung up"
    print(f"{ended}; bot audio saved to {out}")
    return report

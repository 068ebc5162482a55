"""The voice gateway under load: N concurrent simulated calls over Twilio Media Streams against the real server.

`callpilot run` (uvicorn, offline models: Whisper tiny.en ASR, hibari TTS) is started on a free loopback port.
Each simulated caller dials /media/twilio, sends 20 ms mu-law frames in real time, waits for the greeting to
end, asks a question and barges in during the answer with a second one. The load is varied like a real line's:
every caller draws its two utterances from a script covering all the demo intents (one word such as "yes",
spoken order and repair numbers, sentences of up to ~8 s; a share of them with a 400-700 ms pause in the
middle), spoken by one of three voices (piper joe, hibari, espeak-ng), at 8 kHz mu-law. Measured per N, with
wall-clock timestamps on the caller's side:

- turn gap: the frame holding the caller's last voiced sample sent -> the first bot audio frame received
  (it includes the end-of-turn silence, 500 ms by default); both turns of every call count;
- false cut-ins: the bot started answering while the caller was still in the middle of the utterance (its
  audio arrived between the utterance's first and last voiced frames), as a share of caller turns;
- digit-string accuracy: spoken order / repair numbers the NLU got exactly (the call log's transcript after the
  server's transcript repair), also per voice;
- barge-in stop: the first voiced frame of the interruption sent -> Twilio `clear` received (it includes the
  120 ms of confident speech a barge-in needs, so coughs do not count);
- dropped frames: bot frames that arrived after their play-out slot (a 60 ms jitter buffer at the start of
  each bot turn; a stall between sentences counts too) - what a caller would hear as a gap;
- ASR word error: jiwer, what the server's call log says it heard vs each call's own script;
- the TTS cache's hit share over the run (`/health/voice`): answers the cache served instead of synthesising;
- CPU percent of the server process and its ASR worker processes (psutil; 100 = one core), RSS growth per call.

Run: .venv/bin/python bench/voice_benchmark.py [--calls 1 10 20 40] [--out bench/results/voice.json]
(several minutes on 2 cores; `--calls 1 10` for a quick check).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jiwer
import numpy as np
import psutil
import redis

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.dialogue.validation import spoken_digits  # noqa: E402
from callpilot.voice import id_patterns  # noqa: E402
from voice_gateway.audio import FrameBuffer, resample_pcm16, rms  # noqa: E402
from voice_gateway.call_log import LifecycleKind, read_call_log  # noqa: E402
from voice_gateway.events import AudioOut, Clear, Mark  # noqa: E402
from voice_gateway.pipeline.transcript_fixes import TranscriptFixer  # noqa: E402
from voice_gateway.simulated_caller import dial_twilio  # noqa: E402
from voice_gateway.sip_caller import dial_sip  # noqa: E402
from voice_gateway.tts import HibariTts, PiperTts  # noqa: E402

WORKERS_REDIS = "redis://127.0.0.1:6379/13"
RATE = 8000
FRAME = 320  # bytes of PCM16 in 20 ms at 8 kHz
# What callers say (question, then the interruption is drawn from the same list): every demo intent, one-word
# answers, spoken identifiers (`digits` = what the server must hear exactly), up to ~8 s. `|` marks where a
# share of the callers pause for 400-700 ms mid-sentence.
SCRIPTS: tuple[tuple[str, str | None], ...] = (
    ("what are your opening hours", None),
    ("where is my order | four eight two one five", "48215"),
    ("my order number is | four one eight seven seven", "41877"),
    ("I'd like to cancel order four five one two zero please", "45120"),
    ("yes", None),
    ("no thanks", None),
    ("how long does delivery take", None),
    ("can you tell me the status of repair R one zero four two three three", "104233"),
    ("what is your return policy for opened items", None),
    ("I want to talk to a real person | please", None),
    ("do you accept PayPal or apple pay", None),
    ("is there a store near Boston", None),
    ("my dishwasher is leaking water all over the kitchen floor | and I don't know what to do", None),
    ("can you send me the invoice for order four three five six one", "43561"),
    ("I need to change the delivery address for my order | because I'm moving next week", None),
    ("what does the warranty cover on the washing machine", None),
    ("I was charged twice for the same order and I want my money back", None),
    ("hello", None),
    ("can somebody install my new fridge next tuesday", None),
    ("I forgot the password for my online account", None),
    ("where is my refund", None),
    ("tell me about the AquaWash 900 steam washing machine", None),
)
VOICES = ("piper", "hibari", "espeak")
# `--language zh`: a 400 line (languages zh,en, Whisper base), Mandarin callers. espeak-ng is the only Mandarin
# voice here, varied in speed and pitch; Whisper base understands little of it (bench/results/asr_zh.json), so a
# Mandarin run measures timing (turn gaps, barge-in, dropped frames, CPU), not understanding.
SCRIPTS_ZH: tuple[tuple[str, str | None], ...] = (
    ("请问你们几点开门", None),
    ("喂你好，我想查一下我的订单 | 四八二一五", "48215"),
    ("我的订单号是 | 四一八七七", "41877"),
    ("我要取消订单四五一二零", "45120"),
    ("对", None),
    ("不用了，谢谢", None),
    ("一般几天能送到", None),
    ("我的维修单是R一零四二三三，修好了吗", "104233"),
    ("拆封了的东西还能退吗", None),
    ("我要转人工 | 谢谢", None),
    ("可以用支付宝或者微信付款吗", None),
    ("上海有你们的门店吗", None),
    ("我家洗碗机漏水了，厨房地上全是水 | 不知道怎么办", None),
    ("帮我把订单四三五六一的发票发到邮箱", "43561"),
    ("我要改一下收货地址 | 因为下周要搬家", None),
    ("洗衣机的保修包括哪些", None),
    ("同一个订单扣了我两次钱，我要退款", None),
    ("喂，你好", None),
    ("新买的冰箱下周二能上门安装吗", None),
    ("我忘了网上账户的密码", None),
)
VOICES_ZH = ("cmn-slow", "cmn", "cmn-high")
ESPEAK_ZH = {"cmn-slow": ["-s", "140", "-p", "40"], "cmn": ["-s", "165", "-p", "50"],
             "cmn-high": ["-s", "185", "-p", "70"]}
PAUSE_SHARE = 0.3  # callers who pause mid-sentence where a script has `|`
GREETING_QUIET_S = 1.2  # the greeting is over once the bot has been silent this long
BARGE_IN_AFTER_S = 0.8  # how far into the answer the caller interrupts
JITTER_BUFFER_S = 0.06
PHASE_TIMEOUT_S = 25.0
STAGGER_S = 8.0  # calls start spread over this long: real calls do not all ask their question in the same second


def synthesise(text: str, voice: str) -> bytes:
    """Caller speech at 8 kHz PCM16 (the codec turns it into mu-law like a phone line)."""
    if voice == "espeak" or voice in ESPEAK_ZH:
        options = ["-v", "cmn-latn-pinyin", *ESPEAK_ZH[voice]] if voice in ESPEAK_ZH else ["-s", "165"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "say.wav"
            subprocess.run(["espeak-ng", *options, "-w", str(path), text], check=True, timeout=60)
            with wave.open(str(path)) as wav:
                return resample_pcm16(wav.readframes(wav.getnframes()), wav.getframerate(), RATE)
    engine = PiperTts() if voice == "piper" else HibariTts()

    async def render() -> bytes:
        chunks = [chunk async for chunk in engine.synthesize(text)]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, RATE)

    return asyncio.run(render())


@dataclass(frozen=True)
class Utterance:
    """One scripted caller turn: its audio, words and (for spoken numbers) the digits the server must hear."""

    pcm: bytes
    text: str
    digits: str | None
    voice: str
    paused: bool


def utterance(script: tuple[str, str | None], voice: str, pause_ms: int | None) -> Utterance:
    """The script in `voice`; with `pause_ms`, that much silence where the script has `|`."""
    text, digits = script
    parts = [part.strip() for part in text.split("|")]
    joiner = "" if voice in ESPEAK_ZH else " "
    if pause_ms is None or len(parts) == 1:
        pcm = synthesise(joiner.join(parts), voice)
    else:
        gap = bytes(int(RATE * pause_ms / 1000) * 2)
        pcm = gap.join(synthesise(part, voice) for part in parts)
    paused = pause_ms is not None and len(parts) > 1
    return Utterance(pcm + bytes(FRAME * 5), joiner.join(parts), digits, voice, paused)


def caller_pool(size: int, seed: int = 7, language: str = "en") -> list[tuple[Utterance, Utterance]]:
    """`size` distinct callers: two utterances each, scripts and voices and pauses drawn at random."""
    scripts, voices = (SCRIPTS_ZH, VOICES_ZH) if language == "zh" else (SCRIPTS, VOICES)
    rng = random.Random(seed)
    cache: dict[tuple[int, str, int | None], Utterance] = {}
    pool = []
    for n in range(size):
        pair = []
        for script in rng.sample(range(len(scripts)), 2):
            voice = voices[(n + script) % len(voices)]
            pause = rng.choice((400, 500, 600, 700)) if rng.random() < PAUSE_SHARE else None
            key = (script, voice, pause)
            if key not in cache:
                cache[key] = utterance(scripts[script], voice, pause)
            pair.append(cache[key])
        pool.append((pair[0], pair[1]))
    return pool
def voiced_frames(pcm: bytes) -> tuple[int, int]:
    """Index of the first and last 20 ms frame above -50 dBFS."""
    loud = [i for i, frame in enumerate(FrameBuffer(FRAME).push(pcm)) if rms(frame) > 100]
    return loud[0], loud[-1]


BARGE_IN_MISSED = "the interruption did not stop the bot"
ANSWER_OVER = "the answer was over before the interruption"  # nothing to stop: not a missed barge-in


@dataclass
class CallResult:
    """One call's measurements, in milliseconds."""

    call_id: str = ""
    said: tuple[Utterance, ...] = ()
    turn_gaps_ms: list[float] = field(default_factory=list)
    caller_turns: int = 0
    false_cut_ins: int = 0
    bargein_stop_ms: float | None = None
    late_frames: int = 0
    bot_frames: int = 0
    problems: list[str] = field(default_factory=list)


class Caller:
    """One scripted caller; `tick()` runs every 20 ms of wall-clock time."""

    def __init__(self, line: Any) -> None:  # a TwilioWebsocketLine or a SipCallerLine
        self.line = line
        self.loop_start = time.perf_counter()
        self.frames_sent = 0
        self.timed: list[tuple[float, AudioOut | Mark | Clear]] = []  # server messages, when they were read

    def take(self) -> None:
        now = time.perf_counter()
        for event in self.line.events():  # read every 20 ms: arrival known to within a frame
            if isinstance(event, AudioOut | Mark | Clear):
                self.timed.append((now, event))

    async def send(self, pcm: bytes) -> float:
        """Send one 20 ms frame at its real-time slot; returns the wall-clock time it left."""
        slot = self.loop_start + self.frames_sent * 0.02
        await asyncio.sleep(max(0.0, slot - time.perf_counter()))
        self.line.send_audio(pcm)
        await self.line.flush()
        self.frames_sent += 1
        self.take()
        return time.perf_counter()

    def events_since(self, since: float, kind: type) -> list[float]:
        return [t for t, e in self.timed if t >= since and isinstance(e, kind)]


async def one_call(url: str, question: Utterance, interruption: Utterance, delay_s: float) -> CallResult:
    """Greeting, question, interruption during the answer, the answer to that; measured on the caller's side."""
    await asyncio.sleep(delay_s)
    result = CallResult(said=(question, interruption))
    silence = bytes(FRAME)
    if url.startswith("sip://"):
        host, _, port = url.removeprefix("sip://").partition(":")
        dialled: Any = dial_sip(host, int(port))
    else:
        dialled = dial_twilio(url)
    async with dialled as opened:
        result.call_id = opened.call_id
        caller = Caller(opened)
        # 1. The greeting: wait until the bot has spoken and then been quiet.
        deadline = time.perf_counter() + PHASE_TIMEOUT_S
        while time.perf_counter() < deadline:
            now = await caller.send(silence)
            heard = caller.events_since(0.0, AudioOut)
            if heard and now - heard[-1] > GREETING_QUIET_S:
                break
        else:
            result.problems.append("the greeting never ended")
        # 2. The question.
        pcm = question.pcm
        first, last = voiced_frames(pcm)
        began = asked_at = 0.0
        for index in range(0, len(pcm) // FRAME):
            sent = await caller.send(pcm[index * FRAME : (index + 1) * FRAME])
            began = sent if index == first else began
            asked_at = sent if index == last else asked_at
        result.caller_turns += 1
        result.false_cut_ins += bool([t for t in caller.events_since(began, AudioOut) if t < asked_at])
        answer = await _wait_for(caller, asked_at, AudioOut)
        if answer is None:
            result.problems.append("no answer to the question")
            result.turn_gaps_ms.append(PHASE_TIMEOUT_S * 1000)  # censored: counts as the timeout
            return result
        result.turn_gaps_ms.append((answer - asked_at) * 1000)
        # 3. Interrupt the answer once it has played for a while.
        while time.perf_counter() - answer < BARGE_IN_AFTER_S:
            await caller.send(silence)
        pcm = interruption.pcm
        first, last = voiced_frames(pcm)
        onset = ended = 0.0
        for index in range(0, len(pcm) // FRAME):
            sent = await caller.send(pcm[index * FRAME : (index + 1) * FRAME])
            onset = sent if index == first else onset
            ended = sent if index == last else ended
        result.caller_turns += 1
        if url.startswith("sip://"):  # RTP has no `clear`: the bot stopped when its audio stopped coming
            cleared = await _audio_stopped(caller, onset, until=ended + PHASE_TIMEOUT_S)
        else:
            cleared = await _wait_for(caller, onset, Clear, until=ended + PHASE_TIMEOUT_S)
        if cleared is None:
            # Was there anything to stop? Bot audio arriving in the 300 ms before the onset: it was talking.
            talking = [t for t in caller.events_since(onset - 0.3, AudioOut) if t <= onset]
            result.problems.append(BARGE_IN_MISSED if talking else ANSWER_OVER)
            result.bargein_stop_ms = PHASE_TIMEOUT_S * 1000
            return result
        result.bargein_stop_ms = (cleared - onset) * 1000
        # the bot answering before the interruption was over (after it had stopped for it)
        result.false_cut_ins += bool([t for t in caller.events_since(cleared, AudioOut) if cleared < t < ended])
        # 4. The answer to the interruption.
        reply = await _wait_for(caller, max(ended, cleared), AudioOut)
        if reply is None:
            result.problems.append("no answer to the interruption")
            result.turn_gaps_ms.append(PHASE_TIMEOUT_S * 1000)
        else:
            result.turn_gaps_ms.append((reply - ended) * 1000)
            while time.perf_counter() - reply < 1.5:
                await caller.send(silence)
    result.late_frames, result.bot_frames = late_frames(caller.timed)
    return result


async def _wait_for(caller: Caller, since: float, kind: type, *, until: float | None = None) -> float | None:
    """Keep sending silence until a server event of `kind` arrives after `since`."""
    deadline = until or since + PHASE_TIMEOUT_S
    while time.perf_counter() < deadline:
        found = caller.events_since(since, kind)
        if found:
            return found[0]
        await caller.send(bytes(FRAME))
    return None


async def _audio_stopped(caller: Caller, since: float, *, until: float, gap_s: float = 0.1) -> float | None:
    """When the bot's audio stopped after `since`: the last frame before `gap_s` without any (SIP)."""
    while time.perf_counter() < until:
        heard = caller.events_since(since, AudioOut)
        last = heard[-1] if heard else since
        if time.perf_counter() - last >= gap_s:
            return last
        await caller.send(bytes(FRAME))
    return None


def late_frames(timed: list[tuple[float, AudioOut | Mark | Clear]]) -> tuple[int, int]:
    """Bot frames that arrived after their play-out slot; a clear or 1.5 s without audio starts a new bot turn."""
    late = total = 0
    play_end: float | None = None
    for at, event in timed:
        if isinstance(event, Clear):
            play_end = None
        if not isinstance(event, AudioOut):
            continue
        total += 1
        duration = len(event.pcm) / 2 / RATE
        if play_end is None or at > play_end + 1.5:
            play_end = at + JITTER_BUFFER_S + duration
        elif at > play_end:
            late += 1
            play_end = at + duration
        else:
            play_end += duration
    return late, total


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def normalise(text: str) -> str:
    """Words to compare; Chinese, which has no spaces, character by character (the WER is then a CER)."""
    text = re.sub(r"([\u4e00-\u9fff])", r" \1 ", text.lower())
    return " ".join(re.sub(r"[^a-z0-9'\u4e00-\u9fff ]+", " ", text).split())


def heard_by_server(call_log: Path, results: list[CallResult]) -> dict[str, list[str]]:
    """What the server's call log says each call's caller said, in order."""
    heard: dict[str, list[str]] = {r.call_id: [] for r in results if r.call_id}
    for event in read_call_log(call_log):
        if event.call_id in heard and event.kind is LifecycleKind.TURN and event.data.get("speaker") == "caller":
            heard[event.call_id].append(str(event.data["text"]))
    return heard


def asr_wer(heard: dict[str, list[str]], results: list[CallResult]) -> float | None:
    """Word error of what the server heard vs each call's own script (both caller turns)."""
    pairs = [(normalise(" ".join(u.text for u in r.said)), normalise(" ".join(heard.get(r.call_id, []))) or "<nothing>")
             for r in results if r.call_id in heard]
    if not pairs:
        return None
    return round(float(jiwer.wer([ref for ref, _ in pairs], [hyp for _, hyp in pairs])), 3)


def digit_accuracy(heard: dict[str, list[str]], results: list[CallResult],
                   fixer: TranscriptFixer) -> tuple[float | None, int, dict[str, float]]:
    """Share of spoken identifiers the NLU got exactly: the server's transcript of that turn (or of a later turn of
    the call, when a pause split the utterance) after its transcript repair holds the digits as one run. Also per
    voice."""
    right: dict[str, list[bool]] = {}
    for result in results:
        turns = heard.get(result.call_id, [])
        for index, said in enumerate(result.said):
            if said.digits is not None:
                texts = [fixer.fix(text) for text in turns[index:]]
                hit = any(said.digits in re.findall(r"\d+", text) or spoken_digits(text) == said.digits
                          for text in texts)
                right.setdefault(said.voice, []).append(hit)
    every = [hit for hits in right.values() for hit in hits]
    by_voice = {voice: round(sum(hits) / len(hits), 3) for voice, hits in sorted(right.items())}
    return (round(sum(every) / len(every), 3) if every else None), len(every), by_voice


def family(server: psutil.Process) -> list[psutil.Process]:
    """The server and its worker processes (ASR)."""
    return [server, *server.children(recursive=True)]


def rss(server: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in family(server))


def cpu_seconds(server: psutil.Process) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in family(server)))


class Sampler:
    """The peak RSS of the server and its workers, sampled every 200 ms in a thread."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = rss(process)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss(self.process))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


async def run_calls(url: str, callers: list[tuple[Utterance, Utterance]]) -> list[CallResult]:
    rng = random.Random(len(callers))
    delays = [0.0, *sorted(rng.uniform(0, STAGGER_S) for _ in range(len(callers) - 1))]
    return list(await asyncio.gather(*(one_call(url, q, i, d) for (q, i), d in zip(callers, delays, strict=True))))


def voice_statuses(port: int, workers: int, *, tries: int = 200) -> dict[int, dict[str, Any]]:
    """/health/voice of every server process (with `workers`, each new connection reaches one of them)."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(tries if workers > 1 else 1):
        reply = httpx.get(f"http://127.0.0.1:{port}/health/voice", timeout=10)
        status = reply.json()
        seen[int(status.get("pid", 0))] = status if reply.status_code == 200 else {}
        if len([s for s in seen.values() if s]) >= workers:
            break
    return seen


def tts_cache(port: int, workers: int = 1) -> tuple[int, int]:
    statuses = voice_statuses(port, workers).values()
    return (sum(int(s.get("tts_cache_hits", 0)) for s in statuses),
            sum(int(s.get("tts_cache_misses", 0)) for s in statuses))


def measure(port: int, server: psutil.Process, call_log: Path, callers: list[tuple[Utterance, Utterance]],
            sip_port: int = 0, workers: int = 1) -> dict[str, object]:
    url = f"sip://127.0.0.1:{sip_port}" if sip_port else f"ws://127.0.0.1:{port}/media/twilio"
    n = len(callers)
    seen = {e.call_id for e in read_call_log(call_log)} if call_log.exists() else set()
    rss_before = rss(server)
    hits_before, misses_before = tts_cache(port, workers)
    cpu_before, wall_before = cpu_seconds(server), time.perf_counter()
    sampler = Sampler(server)
    results = asyncio.run(run_calls(url, callers))
    peak = sampler.stop()
    cpu = (cpu_seconds(server) - cpu_before) / (time.perf_counter() - wall_before) * 100
    time.sleep(1.0)  # the server writes the calls' `ended` events
    events = read_call_log(call_log)
    call_ids = {e.call_id for e in events} - seen
    # The server's own view, in call time (caller audio it has processed): a gap much shorter than the
    # caller's means the server's audio processing fell behind the wall clock.
    ended = [e.data.get("turn_gaps_ms") for e in events if e.call_id in call_ids and e.kind is LifecycleKind.ENDED]
    server_gaps = [float(g) for gaps in ended if isinstance(gaps, list) for g in gaps]
    gaps = [g for r in results for g in r.turn_gaps_ms]
    stops = [r.bargein_stop_ms for r in results if r.bargein_stop_ms is not None]
    problems = [p for r in results for p in r.problems]
    heard = heard_by_server(call_log, results)
    fixer = TranscriptFixer(id_patterns(ROOT / "nlu_data"))
    digits, digit_turns, digits_by_voice = digit_accuracy(heard, results, fixer)
    hits, misses = (now - before for now, before in zip(tts_cache(port, workers), (hits_before, misses_before),
                                                            strict=True))
    turns = sum(r.caller_turns for r in results)
    run: dict[str, object] = {
        "concurrent_calls": n,
        "turn_gap_ms_p50": percentile(gaps, 50),
        "turn_gap_ms_p95": percentile(gaps, 95),
        "bargein_stop_ms_p95": percentile(stops, 95),
        "dropped_frames": sum(r.late_frames for r in results),
        "asr_wer": asr_wer(heard, results),
        "false_cut_ins": round(sum(r.false_cut_ins for r in results) / turns, 3) if turns else None,
        "digit_string_accuracy": digits,
        "digit_strings": digit_turns,
        "digit_string_accuracy_by_voice": digits_by_voice,
        "tts_cache_hit_share": round(hits / (hits + misses), 3) if hits + misses else None,
        "cpu_percent": round(cpu, 1),
        "rss_mb_per_call": round(max(0, peak - rss_before) / 2**20 / n, 2),
    }
    detail = (f"N={n}: {len(gaps)} turn gaps, {len(stops)} barge-ins (stop p50 {percentile(stops, 50)} ms, max "
              f"{max(stops, default=float('nan')):.1f} ms), {sum(r.bot_frames for r in results)} bot "
              f"frames, server-side turn gap p50/p95 {percentile(server_gaps, 50)}/{percentile(server_gaps, 95)} "
              f"ms (call time), problems: {dict((p, problems.count(p)) for p in set(problems)) or 'none'}")
    print(json.dumps(run), "|", detail, flush=True)
    run["_detail"] = detail
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, call_log: Path, end_of_turn_ms: int, language: str = "en",
                 sip_port: int = 0, turn_end: str = "words", workers: int = 1,
                 asr_processes: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALLPILOT_AUDIOSOCKET_PORT": "0", "CALLPILOT_CALL_LOG": str(call_log),
           "CALLPILOT_LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1",
           "CALLPILOT_END_OF_TURN_MS": str(end_of_turn_ms), "CALLPILOT_TURN_END": turn_end}
    if sip_port:
        env["CALLPILOT_SIP_PORT"] = str(sip_port)
    if language == "zh":  # a 400 line
        env |= {"CALLPILOT_LANGUAGES": "zh,en", "CALLPILOT_ASR_ENGINE": "whisper-base"}
    if asr_processes is not None:
        env["CALLPILOT_ASR_PROCESSES"] = str(asr_processes)
    if workers > 1:  # several server processes on the port share the floor through the real Redis
        redis.Redis.from_url(WORKERS_REDIS).flushdb()
        env |= {"CALLPILOT_WORKERS": str(workers), "CALLPILOT_REDIS_URL": WORKERS_REDIS}
    server = subprocess.Popen([sys.executable, "-m", "callpilot", "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(server, port)
    deadline = time.monotonic() + 300
    while len([s for s in voice_statuses(port, workers).values() if s]) < workers:
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"the {workers} server workers did not all get ready")
        time.sleep(1.0)
    return server


def wait_ready(server: subprocess.Popen[bytes], port: int, *, seconds: float = 300) -> subprocess.Popen[bytes]:
    """The server, once its voice models are loaded (`/health/voice`); exits the benchmark if it never is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/voice", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the server's voice models did not load in {seconds:.0f} s")


def plot(runs: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [int(str(r["concurrent_calls"])) for r in runs]

    def series(key: str) -> list[float]:
        return [float(str(r[key])) if r[key] is not None else float("nan") for r in runs]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(n, series("turn_gap_ms_p50"), "o-", label="turn gap p50")
    left.plot(n, series("turn_gap_ms_p95"), "o-", label="turn gap p95")
    left.plot(n, series("bargein_stop_ms_p95"), "s-", label="barge-in stop p95")
    left.axhline(800, color="grey", ls="--", lw=1, label="target: turn gap p95 800 ms")
    left.axhline(200, color="grey", ls=":", lw=1, label="target: barge-in stop 200 ms")
    left.set_xlabel("concurrent calls")
    left.set_ylabel("ms")
    left.legend(fontsize=8)
    right.plot(n, series("cpu_percent"), "o-", label="CPU %, server + ASR workers (100 = 1 core)")
    right.plot(n, series("dropped_frames"), "s-", label="late bot frames")
    right.set_xlabel("concurrent calls")
    right.legend(fontsize=8)
    fig.suptitle("callpilot voice gateway, simulated Twilio calls on loopback")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 10, 20, 40])
    parser.add_argument("--call-log", type=Path, help="keep the server's call log here (default: thrown away)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    parser.add_argument("--end-of-turn-ms", type=int, default=500, help="the server's end-of-turn silence")
    parser.add_argument("--turn-end", choices=("words", "silence"), default="words",
                        help="words: the caller's words at a pause set the turn's end (the default); silence: not")
    parser.add_argument("--seed", type=int, default=7, help="which callers (scripts, voices, pauses) are drawn")
    parser.add_argument("--transport", choices=("twilio", "sip"), default="twilio",
                        help="how the callers dial: Twilio Media Streams, or SIP (RTP) to --sip-port")
    parser.add_argument("--language", choices=("en", "zh"), default="en",
                        help="zh: a 400 line (languages zh,en, Whisper base) and Mandarin callers")
    parser.add_argument("--workers", type=int, default=1, help="server processes on the port (CALLPILOT_WORKERS; "
                        "more than 1 uses the real Redis at 127.0.0.1:6379, database 13)")
    parser.add_argument("--asr-processes", type=int, help="CALLPILOT_ASR_PROCESSES per server process")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "voice.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server on the way out (finally below)
    # Distinct callers for every run (and the warm-up): no run replays another's callers, so a cache only a
    # benchmark hits cannot flatter it.
    sizes = [1, *args.calls]
    pool = caller_pool(sum(sizes), seed=args.seed, language=args.language)
    batches, start = [], 0
    for size in sizes:
        batches.append(pool[start:start + size])
        start += size
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        call_log, port = args.call_log or Path(tmp) / "calls.jsonl", free_port()
        sip_port = free_port() if args.transport == "sip" else 0
        server = start_server(port, call_log, args.end_of_turn_ms, args.language, sip_port, args.turn_end,
                              args.workers, args.asr_processes)
        try:
            process = psutil.Process(server.pid)
            measure(port, process, call_log, batches[0], sip_port, args.workers)  # warm-up: first use not counted
            runs = [measure(port, process, call_log, batch, sip_port, args.workers) for batch in batches[1:]]
        finally:
            server.terminate()
            server.wait(timeout=30)
    details = [str(run.pop("_detail")) for run in runs]
    scripts, voices = (SCRIPTS_ZH, VOICES_ZH) if args.language == "zh" else (SCRIPTS, VOICES)
    report = {
        "runs": runs,
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version(),
                    "load_average_before": round(load_before, 2)},
        "language": args.language,
        "turn_end": args.turn_end,
        "transport": args.transport,
        "workers": args.workers,
        "asr_processes_per_worker": args.asr_processes,
        "notes": [
            "Twilio Media Streams over loopback websockets against `callpilot run` (one uvicorn process); "
            + ("ASR whisper-base (zh or en per utterance) in 2 worker processes, Chinese answers by espeak-ng's "
               "Mandarin voice, Silero VAD; Mandarin callers in espeak-ng cmn at three speeds and pitches; "
               "asr_wer is a character error rate." if args.language == "zh" else
               "ASR whisper-tiny.en in 2 worker processes (1 thread per decode), TTS hibari, Silero VAD; "
               "caller voices piper joe, hibari, espeak-ng."),
            f"Calls start spread over {STAGGER_S} s; every caller waits for the greeting, asks a question and "
            f"interrupts the answer after {BARGE_IN_AFTER_S} s with another, both drawn from {len(scripts)} "
            f"scripts over the demo intents (one word to ~8 s, spoken order and repair numbers), in one of "
            f"{', '.join(voices)}; {PAUSE_SHARE:.0%} of the sentences with a `|` get a 400-700 ms pause there. "
            f"Seed {args.seed}; no caller is replayed across runs.",
            "false_cut_ins = caller turns in which bot audio arrived between the turn's first and last voiced "
            "frames (after the `clear` for an interruption), over all caller turns. digit_string_accuracy = "
            "spoken identifiers the NLU got exactly (a run of digits in the call log's transcript of that turn or a "
            "later one, after the server's transcript repair), over `digit_strings`; also per caller voice. "
            "tts_cache_hit_share = sentences served by the server's TTS cache / all sentences, over the run.",
            "turn gap = caller's last voiced frame sent -> first bot frame received; includes the end-of-turn "
            f"silence: CALLPILOT_TURN_END={args.turn_end} (words: 250 ms after a whole request, 800 / 1,200 ms "
            f"after unfinished words, else {args.end_of_turn_ms} ms = CALLPILOT_END_OF_TURN_MS). "
            "barge-in stop = interruption's first voiced frame sent -> `clear` received; "
            "includes the 120 ms of confident speech (Silero probability >= 0.5) a barge-in needs.",
            f"A turn not answered (a barge-in not stopped) within {PHASE_TIMEOUT_S:.0f} s counts as "
            f"{PHASE_TIMEOUT_S * 1000:.0f} ms in the percentiles.",
            "dropped_frames = bot frames arriving after their play-out slot (60 ms jitter buffer per bot turn).",
            "cpu_percent and RSS count the server and its ASR worker processes; "
            "rss_mb_per_call = (peak RSS during the run - RSS before it) / N.",
            *args.note,
            *details,
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(runs, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()

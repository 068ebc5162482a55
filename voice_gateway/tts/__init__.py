"""Speech synthesis behind one streaming interface: engines, fallback, spoken text, sentence streaming and cache."""

from voice_gateway.tts.breaker import BreakerState, CircuitBreaker
from voice_gateway.tts.cache import SentenceCache
from voice_gateway.tts.edge import EdgeTts
from voice_gateway.tts.engines import OFFLINE_DEFAULT, default_chain, load_offline
from voice_gateway.tts.espeak import EspeakTts
from voice_gateway.tts.fallback import FallbackLink, FallbackTts, language_of
from voice_gateway.tts.formats import AUDIOSOCKET, BROWSER, NATIVE, TWILIO, Encoding, OutputFormat, encode
from voice_gateway.tts.local import HibariTts, PiperTts
from voice_gateway.tts.streamer import SentenceAudio, SentenceStreamer, split_sentences
from voice_gateway.tts.types import AudioChunk, CircuitOpen, EngineUnavailable, TtsEngine

__all__ = [
    "AUDIOSOCKET",
    "BROWSER",
    "NATIVE",
    "OFFLINE_DEFAULT",
    "TWILIO",
    "AudioChunk",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "EdgeTts",
    "Encoding",
    "EngineUnavailable",
    "EspeakTts",
    "FallbackLink",
    "FallbackTts",
    "HibariTts",
    "OutputFormat",
    "PiperTts",
    "SentenceAudio",
    "SentenceCache",
    "SentenceStreamer",
    "TtsEngine",
    "default_chain",
    "encode",
    "language_of",
    "load_offline",
    "split_sentences",
]

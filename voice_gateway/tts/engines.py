"""Build engines by name and the gateway's default chain (edge-tts -> offline default -> espeak-ng)."""

from __future__ import annotations

from collections.abc import Callable

from voice_gateway.tts.breaker import CircuitBreaker
from voice_gateway.tts.edge import EDGE_ENDPOINT, EdgeTts
from voice_gateway.tts.espeak import EspeakTts
from voice_gateway.tts.fallback import FallbackLink, FallbackTts
from voice_gateway.tts.local import HibariTts, PiperTts
from voice_gateway.tts.types import TtsEngine

# Chosen by bench/tts_benchmark.py (bench/results/tts.json): see voice_gateway/tts/README.md.
OFFLINE_DEFAULT = "hibari"
OFFLINE_ENGINES: dict[str, Callable[[], TtsEngine]] = {"hibari": HibariTts, "piper": PiperTts}


def load_offline(name: str = OFFLINE_DEFAULT) -> TtsEngine:
    """An offline neural engine by name ("hibari" or "piper")."""
    try:
        factory = OFFLINE_ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown offline TTS engine {name!r}; choose from {', '.join(OFFLINE_ENGINES)}") from None
    return factory()


def with_mandarin(
    english: TtsEngine,
    *,
    use_edge: bool = False,
    edge_endpoint: tuple[str, int] = EDGE_ENDPOINT,
    edge_connect_timeout_s: float = 0.25,
    edge_cooldown_s: float = 60.0,
) -> FallbackTts:
    """`english` for English text; Chinese text to edge-tts zh-CN-XiaoxiaoNeural when `use_edge` (and it is
    reachable: one connect attempt of `edge_connect_timeout_s`, then `edge_cooldown_s` without trying), else
    espeak-ng's Mandarin voice, the offline one (measured in bench/results/asr_zh.json)."""
    links = [FallbackLink(english, "en-us" if isinstance(english, EspeakTts) else None, frozenset({"en"}))]
    if use_edge:
        edge = EdgeTts(endpoint=edge_endpoint, connect_timeout_s=edge_connect_timeout_s,
                       breaker=CircuitBreaker(cooldown_s=edge_cooldown_s))
        links.append(FallbackLink(edge, "zh-CN-XiaoxiaoNeural", frozenset({"zh"})))
    links.append(FallbackLink(EspeakTts(), "cmn", frozenset({"zh"})))
    chain = FallbackTts(links, sample_rate=english.sample_rate)
    chain.name = english.name  # what /health/voice reports: the configured voice (Chinese text goes to its link)
    return chain


def default_chain(
    *,
    offline: TtsEngine | None = None,
    espeak: EspeakTts | None = None,
    use_edge: bool = True,
    # edge-tts
    edge_endpoint: tuple[str, int] = EDGE_ENDPOINT,
    edge_connect_timeout_s: float = 0.25,
    edge_cooldown_s: float = 60.0,
    breaker: CircuitBreaker | None = None,
) -> FallbackTts:
    """English: edge -> offline default -> espeak en-us; Mandarin: edge zh -> espeak cmn; one breaker for edge."""
    offline = offline or load_offline()
    espeak = espeak or EspeakTts()
    links: list[FallbackLink] = []
    if use_edge:
        edge = EdgeTts(
            endpoint=edge_endpoint,
            connect_timeout_s=edge_connect_timeout_s,
            breaker=breaker or CircuitBreaker(cooldown_s=edge_cooldown_s),
        )
        links += [
            FallbackLink(edge, "en-US-EmmaMultilingualNeural", frozenset({"en"})),
            FallbackLink(edge, "zh-CN-XiaoxiaoNeural", frozenset({"zh"})),
        ]
    links += [
        FallbackLink(offline, None, frozenset({"en"})),
        FallbackLink(espeak, "en-us", frozenset({"en"})),
        FallbackLink(espeak, "cmn", frozenset({"zh"})),
    ]
    return FallbackTts(links, sample_rate=offline.sample_rate)

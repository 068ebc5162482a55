"""Sample rates for recognisers: the rates the streams take, telephone 8 kHz to the models' 16 kHz (PCM16 bytes
become float32 samples with voice_gateway.audio.pcm16_to_float)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

SUPPORTED_RATES = (8000, 16000)
MODEL_RATE = 16000

Samples = npt.NDArray[np.float32]


def check_rate(sample_rate: int) -> None:
    """Raise for rates the streams do not take."""
    if sample_rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {sample_rate}: use one of {SUPPORTED_RATES}")


def to_model_rate(samples: Samples, sample_rate: int) -> Samples:
    """Resample a whole utterance to 16 kHz (polyphase filter, so no aliasing from the phone band)."""
    if sample_rate == MODEL_RATE:
        return samples
    resampled: Samples = resample_poly(samples, MODEL_RATE, sample_rate).astype(np.float32)
    return resampled

"""G.711 mu-law and RMS against the stdlib reference, PCM helpers, 20 ms framing and streaming resampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.signal import resample_poly

from voice_gateway.audio import (
    MULAW_SILENCE,
    FrameBuffer,
    StreamResampler,
    duration_ms,
    float_to_pcm16,
    frame_bytes,
    pcm16_to_float,
    rms,
    silence,
    ulaw_decode,
    ulaw_encode,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference G.711 (deprecated in 3.11, removed in 3.13)

ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_ULAW = bytes(range(256))


def test_mulaw_encode_is_bit_exact_with_audioop_for_all_65536_samples() -> None:
    assert ulaw_encode(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)


def test_mulaw_decode_is_bit_exact_with_audioop_for_all_256_bytes() -> None:
    assert ulaw_decode(ALL_ULAW) == audioop.ulaw2lin(ALL_ULAW, 2)


def test_mulaw_literals_and_round_trip() -> None:
    assert ulaw_encode(b"\x00\x00") == bytes([MULAW_SILENCE])
    assert ulaw_encode(np.array([32767, -32768], dtype="<i2").tobytes()) == b"\x80\x00"
    assert ulaw_decode(b"\xff\x7f") == b"\x00\x00\x00\x00"
    # Decoding then encoding is the identity except for the two zero codes (0x7f decodes to 0 -> 0xff).
    assert ulaw_encode(ulaw_decode(ALL_ULAW)) == ALL_ULAW[:127] + b"\xff" + ALL_ULAW[128:]
    with pytest.raises(ValueError, match="even"):
        ulaw_encode(b"\x00")


def test_mulaw_error_is_within_g711_quantisation() -> None:
    samples = np.frombuffer(ALL_PCM16, dtype="<i2").astype(np.int32)
    decoded = np.frombuffer(ulaw_decode(ulaw_encode(ALL_PCM16)), dtype="<i2").astype(np.int32)
    error = np.abs(decoded - samples)
    assert error[np.abs(samples) < 100].max() < 8  # one step of the finest segment (truncating)
    assert (error / np.maximum(np.abs(samples), 1))[np.abs(samples) > 1000].max() < 0.07


def test_pcm_float_helpers() -> None:
    pcm = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    assert pcm16_to_float(pcm).tolist() == [0.0, 0.5, -1.0, pytest.approx(32767 / 32768)]
    assert float_to_pcm16(pcm16_to_float(pcm)) == pcm
    assert float_to_pcm16(np.array([2.0, -2.0, 0.25])) == np.array([32767, -32768, 8192], dtype="<i2").tobytes()
    assert frame_bytes(8000) == 320 and frame_bytes(16000) == 640 and frame_bytes(48000, 10) == 960
    assert duration_ms(silence(20, 8000), 8000) == 20.0


def test_rms_is_the_level_on_the_int16_scale_like_audioop() -> None:
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 32767).astype("<i2").tobytes()
    assert rms(tone) == pytest.approx(audioop.rms(tone, 2), abs=1) and 6900 < rms(tone) < 7000
    assert rms(ALL_PCM16) == pytest.approx(audioop.rms(ALL_PCM16, 2), abs=1)
    assert rms(b"") == rms(b"\x01") == rms(silence(20, 8000)) == 0.0  # no samples (an odd byte is left out)
    with pytest.raises(ValueError):
        frame_bytes(44100, 1)


def test_frame_buffer_rechunks_any_lengths_into_exact_frames() -> None:
    buffer = FrameBuffer.for_pcm16(8000)
    stream = bytes(range(256)) * 5  # 1280 bytes = 4 frames of 320
    frames: list[bytes] = []
    for size in (1, 319, 7, 500, 33, 420):
        frames += buffer.push(stream[:size])
        stream = stream[size:]
    assert [len(f) for f in frames] == [320, 320, 320, 320]
    assert b"".join(frames) == (bytes(range(256)) * 5)
    assert buffer.pending == 0 and buffer.flush() is None
    assert buffer.push(b"\x01\x02") == [] and buffer.pending == 2
    assert buffer.flush() == b"\x01\x02" + bytes(318)
    buffer.push(b"\x01\x02")
    buffer.clear()
    assert buffer.pending == 0
    assert FrameBuffer(4, pad_byte=MULAW_SILENCE).push(b"\x00") == [] and FrameBuffer(4).push(b"") == []


def _sine(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


@pytest.mark.parametrize(("source", "target"), [(8000, 16000), (16000, 8000), (48000, 16000), (16000, 48000)])
def test_resampler_in_20ms_chunks_equals_one_pass_and_resample_poly(source: int, target: int) -> None:
    signal = _sine(source, 0.5)
    whole = StreamResampler(source, target).process_float(signal)
    streaming = StreamResampler(source, target)
    step = source // 50 + 3  # chunks that do not line up with the decimation phase
    chunked = np.concatenate([streaming.process_float(signal[i : i + step]) for i in range(0, len(signal), step)])
    assert len(chunked) == len(whole) == len(signal) * target // source
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    # Same filter as resample_poly, only delayed (resample_poly is offline and removes the delay).
    reference = resample_poly(signal, streaming.up, streaming.down)
    delay = streaming.delay_samples
    np.testing.assert_allclose(whole[delay + 50 : -50], reference[50 : len(whole) - delay - 50], atol=1e-4)


def test_resampled_pcm_chunks_have_no_clicks_at_the_joints() -> None:
    pcm = float_to_pcm16(_sine(8000, 0.2, hz=300.0))
    resampler = StreamResampler(8000, 16000)
    out = pcm16_to_float(b"".join(resampler.process(pcm[i : i + 320]) for i in range(0, len(pcm), 320)))
    samples = out[resampler.delay_samples :]
    expected = 0.5 * np.sin(2 * np.pi * 300.0 * np.arange(len(samples)) / 16000)
    assert np.abs(samples[40:] - expected[40:]).max() < 0.01
    # A click is a spike in curvature; a 300 Hz sine's own is 0.5 * (2 pi 300 / 16000)^2 = 0.0069.
    curvature_limit = 0.5 * (2 * np.pi * 300 / 16000) ** 2 * 1.3
    assert np.abs(np.diff(out[60:], 2)).max() < curvature_limit
    # The control: resample_poly on each 20 ms chunk alone clicks at every joint.
    naive = np.concatenate([resample_poly(pcm16_to_float(pcm[i : i + 320]), 2, 1) for i in range(0, len(pcm), 320)])
    assert np.abs(np.diff(naive[60:], 2)).max() > 2 * curvature_limit


def test_resampler_identity_reset_and_limits() -> None:
    same = StreamResampler(8000, 8000)
    assert same.identity and same.process(b"\x01\x00") == b"\x01\x00"
    resampler = StreamResampler(8000, 16000)
    first = resampler.process(float_to_pcm16(_sine(8000, 0.02)))
    resampler.reset()
    assert resampler.process(float_to_pcm16(_sine(8000, 0.02))) == first
    with pytest.raises(ValueError, match="factors"):
        StreamResampler(44100, 16000)
    with pytest.raises(ValueError):
        StreamResampler(0, 8000)

"""Debian's baresip as the tests' SIP phone: its configuration (plays a WAV with `aufile`, records what it hears
with `sndfile`), and what it heard transcribed."""

from __future__ import annotations

import wave
from pathlib import Path

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{port}
audio_player\t\taubridge,nil
audio_alert\t\taubridge,nil
audio_source\t\taufile,{wav}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
snd_path\t\t{recordings}
"""


def write_config(folder: Path, *, port: int, account: str, wav: Path, recordings: Path) -> None:
    """baresip's files in `folder`: listening on `port`, one account line (`<sip:...>;regint=0`), no contacts."""
    (folder / "config").write_text(CONFIG.format(port=port, wav=wav, recordings=recordings))
    (folder / "accounts").write_text(account + "\n")
    (folder / "contacts").write_text("")


def transcribe(path: Path) -> str:
    from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir
    from voice_gateway.audio import pcm16_to_float, resample_pcm16

    with wave.open(str(path)) as heard:
        pcm = resample_pcm16(heard.readframes(heard.getnframes()), heard.getframerate(), 16000)
    samples = pcm16_to_float(pcm)
    return WhisperTranscriber.from_dir(tiny_en_dir(), WhisperOptions()).transcribe(samples).text

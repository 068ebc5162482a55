"""SIP end to end against a real SIP phone: Debian's baresip dials `callpilot run --sip-port`, plays a WAV
(its `aufile` source), records what it hears (`sndfile`) and hangs up when the WAV ends. The call runs through
the whole pipeline: greeting, a spoken question answered, the call log and call records with the caller's
number from the From header; what baresip recorded is transcribed and holds the bot's words."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.voice_helpers import VoiceServer, free_port, silence, speech, voice_server, write_wav
from voice_gateway.call_log import LifecycleKind, read_call_log

RATE = 8000
pytestmark = pytest.mark.skipif(shutil.which("baresip") is None, reason="Debian's baresip is needed (.ci/run)")

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    sip_port, trunk_port = free_port(), free_port()
    with voice_server(tmp_path_factory.mktemp("sip"), {
            "CALLPILOT_SIP_PORT": str(sip_port), "CALLPILOT_ASR_PROCESSES": "1",
            # numbers are dialled through a "trunk": here a baresip answering as the callee
            "CALLPILOT_SIP_TRUNK": f"sip:127.0.0.1:{trunk_port}", "CALLPILOT_CALLBACK_RING_TIMEOUT_S": "4",
            "CALLPILOT_CALLBACK_RETRY_S": "[2]"}) as running:
        running.env["SIP_PORT"], running.env["TRUNK_PORT"] = str(sip_port), str(trunk_port)
        yield running


def baresip_call(server: VoiceServer, tmp: Path, wav: Path, caller: str, seconds: int) -> Path:
    """baresip as `caller` dials the 400 number; returns the folder with what it heard."""
    config, recordings = tmp / "baresip", tmp / "heard"
    config.mkdir(parents=True)
    recordings.mkdir()
    (config / "config").write_text(CONFIG.format(port=free_port(), wav=wav, recordings=recordings))
    (config / "accounts").write_text(f"<sip:{caller}@127.0.0.1>;regint=0\n")
    (config / "contacts").write_text("")
    done = subprocess.run(["baresip", "-f", str(config), "-n", "127.0.0.1", "-t", str(seconds),
                           "-e", f"/dial sip:4008001234@127.0.0.1:{server.env['SIP_PORT']}"],
                          capture_output=True, text=True, timeout=seconds + 30)
    assert "Call established" in done.stdout, done.stdout[-2000:]
    return recordings


def transcribe(path: Path) -> str:
    from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir
    from voice_gateway.audio import pcm16_to_float, resample_pcm16

    with wave.open(str(path)) as heard:
        pcm = resample_pcm16(heard.readframes(heard.getnframes()), heard.getframerate(), 16000)
    samples = pcm16_to_float(pcm)
    return WhisperTranscriber.from_dir(tiny_en_dir(), WhisperOptions()).transcribe(samples).text


def test_baresip_calls_the_bot_over_sip_and_hears_it(server: VoiceServer, tmp_path: Path) -> None:
    import httpx

    health = httpx.get(f"{server.url}/health/voice").json()
    assert health["sip"] == {"port": int(server.env["SIP_PORT"]), "registrations": [], "phones": [],
                             "agents_on_phones": []}
    wav = write_wav(tmp_path / "caller.wav", silence(7.0, RATE) + speech("what are your opening hours", RATE)
                    + silence(14.0, RATE), RATE)
    seen = {e.call_id for e in read_call_log(server.call_log)} if server.call_log.exists() else set()
    heard = baresip_call(server, tmp_path, wav, "+16175550142", seconds=32)
    events = [e for e in read_call_log(server.call_log) if e.call_id not in seen]
    started = events[0]
    assert started.kind is LifecycleKind.STARTED and started.data["transport"] == "sip"
    assert started.data["caller"] == "[phone]"  # the From header's number, redacted in the file
    caller = [str(e.data["text"]).lower() for e in events if e.kind is LifecycleKind.TURN
              and e.data["speaker"] == "caller"]
    bot = [str(e.data.get("planned", "")) for e in events if e.kind is LifecycleKind.TURN
           and e.data["speaker"] == "bot"]
    assert any("opening hours" in text for text in caller), caller
    assert "Brightline" in bot[0] and any("Monday to Saturday" in text for text in bot), bot
    assert events[-1].kind is LifecycleKind.ENDED and events[-1].data["reason"] == "hangup"  # baresip's BYE
    (decoded,) = heard.glob("*-dec.wav")  # what baresip's speaker got
    words = transcribe(decoded).lower()
    assert "brightline" in words or "help" in words, words
    assert "monday" in words or "saturday" in words, words


def test_an_agents_baresip_phone_registers_rings_and_talks_with_the_caller(server: VoiceServer, tmp_path: Path) -> None:
    """A second baresip is an agent's desk phone: it registers to callpilot with a digest password and answers
    automatically. The caller (baresip) asks for an agent; the agent's phone rings, hears the whisper and the
    caller's words, and the caller hears the agent's words (both checked by transcription)."""
    import httpx

    cli = [sys.executable, "-m", "callpilot", "agent"]
    added = subprocess.run([*cli, "add", "Ann Lee", "--skills", "orders,returns,billing,tech,general"],
                           env=server.env, capture_output=True, text=True, check=True)
    assert added.stdout.strip().startswith("cpa_")
    subprocess.run([*cli, "phone", "ann-lee", "sip", "--sip-password", "pw-ann-7"], env=server.env, check=True,
                   capture_output=True)
    phone_dir, phone_heard = tmp_path / "phone", tmp_path / "phone-heard"
    phone_dir.mkdir()
    phone_heard.mkdir()
    agent_wav = write_wav(tmp_path / "agent.wav", silence(4.0, RATE) + speech("hello this is ann from the orders team",
                          RATE) + silence(2.0, RATE) + speech("hello this is ann from the orders team", RATE)
                          + silence(60.0, RATE), RATE)
    (phone_dir / "config").write_text(CONFIG.format(port=free_port(), wav=agent_wav, recordings=phone_heard))
    (phone_dir / "accounts").write_text(
        f"<sip:ann-lee@127.0.0.1:{server.env['SIP_PORT']};transport=udp>;auth_pass=pw-ann-7;answermode=auto;"
        "regint=60\n")
    (phone_dir / "contacts").write_text("")
    phone = subprocess.Popen(["baresip", "-f", str(phone_dir), "-n", "127.0.0.1", "-t", "120"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            sip = httpx.get(f"{server.url}/health/voice").json()["sip"]
            if sip["agents_on_phones"] == ["ann-lee"]:
                break
            time.sleep(0.2)
        assert sip["phones"] == ["ann-lee"] and sip["agents_on_phones"] == ["ann-lee"], sip
        caller_wav = write_wav(tmp_path / "caller.wav", silence(7.0, RATE) + speech(
            "I want to speak to an agent", RATE) + silence(12.0, RATE) + speech(
            "my order number is four eight two one five", RATE) + silence(3.0, RATE) + speech(
            "my order number is four eight two one five", RATE) + silence(14.0, RATE), RATE)
        heard = baresip_call(server, tmp_path / "caller", caller_wav, "+16175550199", seconds=44)
    finally:
        phone.terminate()
        out, _ = phone.communicate(timeout=20)
    assert "Call established" in out, out[-3000:]
    (agent_side,) = phone_heard.glob("*-dec.wav")
    agent_words = transcribe(agent_side).lower()
    assert any(w in agent_words for w in ("queue", "waited", "seconds")), agent_words  # the whisper
    assert "order" in agent_words or "four" in agent_words, agent_words  # the caller, bridged
    (caller_side,) = heard.glob("*-dec.wav")
    caller_words = transcribe(caller_side).lower()
    assert "orders team" in caller_words or "ann" in caller_words, caller_words  # the agent, bridged


def phone(tmp: Path, name: str, port: int, account: str, wav: Path) -> tuple[subprocess.Popen[str], Path]:
    """A baresip on `port` with one account, playing `wav`; returns it and the folder of what it hears."""
    config, heard = tmp / name, tmp / f"{name}-heard"
    config.mkdir()
    heard.mkdir()
    (config / "config").write_text(CONFIG.format(port=port, wav=wav, recordings=heard))
    (config / "accounts").write_text(account + "\n")
    (config / "contacts").write_text("")
    process = subprocess.Popen(["baresip", "-f", str(config), "-n", "127.0.0.1", "-t", "40"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, heard


def test_callbacks_are_dialled_to_baresip_answered_and_unanswered(server: VoiceServer, tmp_path: Path) -> None:
    """A supervisor schedules two callbacks: one to a number through the trunk (a baresip that answers and hears
    the bot say it is calling back), one to a SIP address whose baresip rings unanswered (a no_answer attempt,
    retried after the back-off, is on the supervisor's callback list)."""
    import httpx

    key = subprocess.run([sys.executable, "-m", "callpilot", "apikey", "create", "--role", "supervisor",
                          "--name", "test"], env=server.env, capture_output=True, text=True, check=True).stdout.strip()
    quiet = write_wav(tmp_path / "quiet.wav", silence(40.0, RATE), RATE)
    answering, heard = phone(tmp_path, "callee", int(server.env["TRUNK_PORT"]),
                             "<sip:+16175550111@127.0.0.1>;regint=0;answermode=auto", quiet)
    ringing_port = free_port()
    ringing, _ = phone(tmp_path, "away", ringing_port, "<sip:+16175550122@127.0.0.1>;regint=0;answermode=manual",
                       quiet)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        time.sleep(1.0)  # both phones listening
        now = time.time()
        made = [httpx.post(f"{server.url}/supervisor/api/callbacks", headers=headers,
                           json={"number": number, "queue": "general", "at": now}).json()
                for number in ("+16175550111", f"sip:+16175550122@127.0.0.1:{ringing_port}")]
        ids = [m["call_id"] for m in made]
        bad = httpx.post(f"{server.url}/supervisor/api/callbacks", headers=headers, json={"number": "x y"})
        assert bad.status_code == 400
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            callbacks = {c["call_id"]: c for c in httpx.get(f"{server.url}/supervisor/api/snapshot",
                                                            headers=headers).json()["callbacks"]}
            if callbacks[ids[0]]["state"] == "completed" and len(callbacks[ids[1]]["outcomes"]) >= 2:
                break
            time.sleep(0.5)
        time.sleep(12.0)  # the answered callee hears the bot for a while
    finally:
        for process in (answering, ringing):
            process.terminate()
        answered_out, _ = answering.communicate(timeout=20)
        ringing_out, _ = ringing.communicate(timeout=20)
    answered, unanswered = callbacks[ids[0]], callbacks[ids[1]]
    assert answered["state"] == "completed" and answered["outcomes"] == ["answered"], answered
    assert unanswered["outcomes"][:2] == ["no_answer", "no_answer"], unanswered
    assert unanswered["state"] in ("pending", "dialling", "failed"), unanswered
    assert "Call established" in answered_out, answered_out[-2000:]
    assert ringing_out.count("Incoming call") >= 2 or ringing_out.count("incoming call") >= 2, ringing_out[-2000:]
    (decoded,) = heard.glob("*-dec.wav")
    words = transcribe(decoded).lower()
    assert "calling you back" in words or "brightline" in words, words

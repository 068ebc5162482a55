"""SIP through a real proxy: Debian's kamailio stands between callpilot and the phones, as a provider's SBC or an
office PBX would, and Record-Routes every call, so requests inside a call must follow the route set. A baresip
dials callpilot through kamailio (answered, the bot greets, baresip's BYE reaches callpilot through the proxy);
callpilot dials a callback out through kamailio as its trunk (answered by a baresip behind it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.baresip_phone import transcribe, write_config
from tests.voice_helpers import VoiceServer, free_port, silence, voice_server, write_wav
from voice_gateway.call_log import LifecycleKind, read_call_log
from voice_gateway.testing import RATE

pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None or shutil.which("baresip") is None,
                                reason="Debian's kamailio and baresip are needed (.ci/run)")
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

KAMAILIO = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    record_route();
    if ($sp == {callpilot}) {{ $du = "sip:127.0.0.1:{phone}"; }} else {{ $du = "sip:127.0.0.1:{callpilot}"; }}
    t_relay();
}}
"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    tmp = tmp_path_factory.mktemp("kamailio")
    sip_port, proxy_port, phone_port = free_port(), free_port(), free_port()
    config = tmp / "kamailio.cfg"
    config.write_text(KAMAILIO.format(port=proxy_port, modules=MODULES, callpilot=sip_port, phone=phone_port))
    proxy = subprocess.Popen(["kamailio", "-f", str(config), "-DD", "-E", "-P", str(tmp / "kamailio.pid"),
                              "-Y", str(tmp)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        (tmp / "server").mkdir()
        with voice_server(tmp / "server", {"CALLPILOT_SIP_PORT": str(sip_port), "CALLPILOT_ASR_PROCESSES": "1",
                                           "CALLPILOT_SIP_TRUNK": f"sip:127.0.0.1:{proxy_port}"}) as running:
            assert proxy.poll() is None, proxy.stdout.read() if proxy.stdout else ""
            running.env.update(SIP_PORT=str(sip_port), PROXY_PORT=str(proxy_port), PHONE_PORT=str(phone_port))
            yield running
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()


def baresip(tmp: Path, name: str, port: int, account: str, wav: Path, *args: str) -> subprocess.Popen[str]:
    folder = tmp / name
    (folder / "heard").mkdir(parents=True)
    write_config(folder, port=port, account=account, wav=wav, recordings=folder / "heard")
    return subprocess.Popen(["baresip", "-f", str(folder), "-n", "127.0.0.1", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_call_through_the_proxy_is_answered_and_its_bye_follows_the_route(proxied: VoiceServer,
                                                                           tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "quiet.wav", silence(20.0, RATE), RATE)
    before = {e.call_id for e in read_call_log(proxied.call_log)} if proxied.call_log.exists() else set()
    phone = baresip(tmp_path, "caller", free_port(), "<sip:+16175550177@127.0.0.1>;regint=0", wav, "-t", "14",
                    "-e", f"/dial sip:4008001234@127.0.0.1:{proxied.env['PROXY_PORT']}")
    out, _ = phone.communicate(timeout=60)
    assert "Call established" in out, out[-2000:]
    for _ in range(50):  # the BYE went through kamailio; the call log's last line follows
        events = [e for e in read_call_log(proxied.call_log) if e.call_id not in before]
        if events and events[-1].kind is LifecycleKind.ENDED:
            break
        time.sleep(0.2)
    assert events[0].kind is LifecycleKind.STARTED and events[0].data["transport"] == "sip"
    assert events[-1].kind is LifecycleKind.ENDED and events[-1].data["reason"] == "hangup"  # BYE via kamailio
    (decoded,) = (tmp_path / "caller" / "heard").glob("*-dec.wav")
    words = transcribe(decoded).lower()
    assert "brightline" in words or "help" in words, words


def test_a_callback_goes_out_through_the_proxy_as_the_trunk(proxied: VoiceServer, tmp_path: Path) -> None:
    key = subprocess.run([sys.executable, "-m", "callpilot", "apikey", "create", "--role", "supervisor"],
                         env=proxied.env, capture_output=True, text=True, check=True).stdout.strip()
    wav = write_wav(tmp_path / "quiet.wav", silence(30.0, RATE), RATE)
    callee = baresip(tmp_path, "callee", int(proxied.env["PHONE_PORT"]),
                     "<sip:+16175550188@127.0.0.1>;regint=0;answermode=auto", wav, "-t", "25")
    try:
        time.sleep(1.0)
        headers = {"Authorization": f"Bearer {key}"}
        made = httpx.post(f"{proxied.url}/supervisor/api/callbacks", headers=headers,
                          json={"number": "+16175550188", "queue": "general", "at": time.time()}).json()
        state = {}
        for _ in range(60):
            state = next(c for c in httpx.get(f"{proxied.url}/supervisor/api/snapshot", headers=headers).json()
                         ["callbacks"] if c["call_id"] == made["call_id"])
            if state["state"] in ("completed", "failed"):
                break
            time.sleep(0.5)
        assert state["state"] == "completed" and state["outcomes"] == ["answered"], state
    finally:
        callee.terminate()
        out, _ = callee.communicate(timeout=30)
    assert "Call established" in out or "established" in out.lower(), out[-2000:]

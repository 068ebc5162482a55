"""The backup number: a supervisor's switch (or callpilot not being healthy) sends new calls there. The switch on
a real `callpilot run`: a SIP INVITE gets 302 with the backup number, Twilio's webhook a <Dial>, Asterisk's
dialplan the number from /health/divert; switched off, calls are answered again. And the health rules alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
from fakeredis import aioredis as fake_aioredis

from callpilot.divert import Divert
from tests.clocks import FakeClock
from tests.sip_peers import CallerPhone
from tests.voice_helpers import VoiceServer, free_port, voice_server
from voice_gateway.transports.sip.message import parse_message


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    sip_port = free_port()
    with voice_server(tmp_path_factory.mktemp("backup"), {
            "CALLPILOT_SIP_PORT": str(sip_port), "CALLPILOT_BACKUP_NUMBER": "+18005550100",
            "CALLPILOT_ASR_PROCESSES": "1"}) as running:
        running.env["SIP_PORT"] = str(sip_port)
        yield running


def invite_answer(port: int) -> list[int]:
    """A phone's INVITE; the status codes it gets back up to the final one (and the 302's Contact)."""
    async def go() -> list[Any]:
        phone = CallerPhone(port)
        try:
            phone.request("INVITE", body=phone.offer())
            replies = await phone.responses(lambda m: m.status >= 200, timeout=10.0)
            final = replies[-1]
            tag = (final.get("to") or "").split("tag=")[-1]
            phone.request("ACK", to_tag=tag)
            if final.status == 200:
                phone.request("BYE", to_tag=tag)
                parse_message(await phone.receive())
            return [m.status for m in replies] + [final.get("contact")]
        finally:
            phone.close()

    return asyncio.run(go())


def test_the_supervisors_switch_sends_new_calls_to_the_backup_number(server: VoiceServer) -> None:
    key = subprocess.run([sys.executable, "-m", "callpilot", "apikey", "create", "--role", "supervisor"],
                         env=server.env, capture_output=True, text=True, check=True).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    port = int(server.env["SIP_PORT"])
    assert httpx.post(f"{server.url}/supervisor/api/divert", json={"on": True}).status_code == 401
    assert httpx.post(f"{server.url}/supervisor/api/divert", headers=headers, json={"on": "yes"}).status_code == 400
    answered = invite_answer(port)
    assert answered[:3] == [100, 180, 200]  # healthy and not switched: the bot answers
    assert httpx.get(f"{server.url}/health/divert").text == ""
    on = httpx.post(f"{server.url}/supervisor/api/divert", headers=headers, json={"on": True}).json()
    assert on["diverting"] and on["reason"] == "switch" and on["backup_number"] == "+18005550100"
    diverted = invite_answer(port)
    assert diverted[:-1] == [302] and "+18005550100" in str(diverted[-1])  # the trunk places the call
    twiml = httpx.post(f"{server.url}/twilio/voice", data={"CallSid": "CA" + "1" * 32, "From": "+16175550142",
                                                           "To": "+14005550100"}).text
    assert "<Dial" in twiml and "+18005550100</Dial>" in twiml and "<Stream" not in twiml
    assert httpx.get(f"{server.url}/health/divert").text == "+18005550100"  # for Asterisk's dialplan
    voice = httpx.get(f"{server.url}/health/voice").json()["divert"]
    assert voice["diverting"] and voice["diverted_calls"] >= 3
    off = httpx.post(f"{server.url}/supervisor/api/divert", headers=headers, json={"on": False}).json()
    assert not off["diverting"]
    assert invite_answer(port)[:3] == [100, 180, 200]


@pytest.mark.anyio
async def test_callpilot_not_healthy_diverts_and_the_switch_is_shared_through_redis() -> None:
    status: dict[str, Any] = {"status": "loading", "asr_worker_restarts": 0}
    clock = FakeClock(0.0)
    client = fake_aioredis.FakeRedis(server=fakeredis.FakeServer())
    divert = Divert("+18005550100", when_unhealthy=True, voice_status=lambda: status, redis=lambda: client,
                    key="callpilot:divert", clock=clock)
    await divert.refresh()
    assert divert.target() == "+18005550100" and divert.reason == "voice_loading"
    status["status"] = "ready"
    await divert.refresh()
    assert divert.target() is None
    for restarts in (1, 2, 3):  # ASR workers dying three times within a minute
        clock.advance(10)
        status["asr_worker_restarts"] = restarts
        await divert.refresh()
    assert divert.reason == "asr_unhealthy"
    clock.advance(120)  # no more deaths for two minutes: healthy again
    await divert.refresh()
    clock.advance(1)
    await divert.refresh()
    assert divert.reason is None
    other = Divert("+18005550100", when_unhealthy=False, voice_status=lambda: status, redis=lambda: client,
                   key="callpilot:divert")
    await divert.set_switch(True)
    await other.refresh()  # another process sees the switch
    assert other.target() == "+18005550100" and other.reason == "switch"
    status["status"] = "failed"
    await divert.set_switch(False)
    await other.refresh()
    assert other.target() is None  # unhealthy does not divert there: backup_when_unhealthy is off
    assert Divert(None, when_unhealthy=True, voice_status=lambda: status, redis=lambda: None,
                  key="k").target() is None  # no backup number: never diverts


def test_no_backup_number_means_no_switch(tmp_path: Path) -> None:
    from callpilot.settings import Settings, SettingsError

    with pytest.raises(SettingsError):
        Settings.load(None, {"CALLPILOT_BACKUP_NUMBER": "call the boss"})
    assert Settings.load(None, {"CALLPILOT_BACKUP_NUMBER": "sip:backup@pbx.example"}).backup_number


def test_lines_are_found_by_any_spelling_of_the_dialled_number_and_have_their_own_backup() -> None:
    from callpilot.settings import Settings, SettingsError

    settings = Settings.load(None, {"CALLPILOT_LINES": '{"4008001234": {name: "400 hotline", language: zh, '
                                                       'backup_number: "+864008009999"}, "+18005550199": {name: US}}',
                                    "CALLPILOT_ASR_ENGINE": "whisper-base"})
    for dialled in ("4008001234", "+864008001234", "sip:4008001234@trunk.example", "tel:+86-400-800-1234"):
        found = settings.line(dialled)
        assert found is not None and found[1].name == "400 hotline", dialled
    assert settings.line("18005550199")[1].name == "US"  # type: ignore[index]
    assert settings.line("+14155550000") is None and settings.line("") is None
    with pytest.raises(SettingsError):  # a line's language must be one of the line's languages
        Settings.load(None, {}, languages=["en"], lines={"4008001234": {"name": "x", "language": "zh"}})
    with pytest.raises(SettingsError):  # the same number twice
        Settings.load(None, {}, lines={"4008001234": {"name": "a"}, "400-800-1234": {"name": "b"}})
    with pytest.raises(SettingsError):  # English-only ASR cannot serve a Chinese line
        Settings.load(None, {}, asr_engine="whisper-tiny.en", lines={"4008001234": {"name": "x", "language": "zh"}})
    status = {"status": "failed"}
    divert = Divert("+18005550100", when_unhealthy=True, voice_status=lambda: status, redis=lambda: None, key="k",
                    line_backup=lambda called: (f[1].backup_number if (f := settings.line(called)) else None))
    asyncio.run(divert.refresh())
    assert divert.target("+864008001234") == "+864008009999"  # the 400 line's own backup number
    assert divert.target("+18005550199") == "+18005550100"  # no backup of its own: the global one

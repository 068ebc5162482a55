"""The agent's screen pop finds callers in the records' contacts (SQL table or external CRM), and the agent's
wrap-up reaches the call record even while the voice models are not loaded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.records.models import CallRecord, Contact
from callpilot.settings import Settings
from handoff import agents_path
from handoff.directory import AgentDirectory
from handoff.model import AgentStatus, HandoffContext
from handoff.service import HandoffService
from handoff.testing import decision
from tests.fake_crm import FakeCrm
from tests.redis_fixtures import own_embedded_redis  # noqa: F401  (autouse: a fresh in-process Redis)
from voice_gateway.call_log import read_call_log

ROOT = Path(__file__).resolve().parent.parent
ONLY_IN_SQL = "+16175559876"  # not a demo customer: only the contacts table knows this caller
ONLY_IN_CRM = "+16175554321"


@pytest.fixture
def crm() -> Iterator[FakeCrm]:
    """An external CRM that knows one contact."""
    server = FakeCrm({ONLY_IN_CRM: (200, {"contacts": [
        {"id": "crm-77", "name": "Rosa Diaz", "phone": ONLY_IN_CRM, "tier": "gold"}]})})
    yield server
    server.close()


def make_app(tmp_path: Path, nlu_engine: NLUEngine, **settings: Any) -> tuple[TestClient, Settings, str]:
    """The whole server (records, in-process Redis handoff) without speech models, and one orders agent."""
    config = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path / "var",
                           database_url=f"sqlite:///{tmp_path / 'rec.db'}", audiosocket_port=0,
                           call_log=tmp_path / "calls.jsonl", **settings)
    agent, _token = AgentDirectory(agents_path(config)).add("Maria", {"orders": 3})
    app = create_app(config, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None  # the voice models never load in this test
    return TestClient(app), config, agent.agent_id


async def answer(service: HandoffService, agent_id: str, call_id: str, number: str) -> HandoffContext:
    """The caller asks for a person; the agent is ringed and accepts: the context on the agent's screen."""
    await service.set_status(agent_id, AgentStatus.AVAILABLE)
    await service.request(call_id, decision(caller=number), language="en")
    for _ in range(500):
        state = await service.presence.state(agent_id)
        if state.status is AgentStatus.RINGING and state.offer_id:
            return await service.accept(agent_id, state.offer_id)
        await asyncio.sleep(0.01)
    raise AssertionError("the agent was never offered the call")


async def finish(service: HandoffService, agent_id: str, call_id: str) -> None:
    await service.hang_up(agent_id, call_id)
    await service.wrap_up(agent_id, call_id, "follow_up", "call back about order 48215, mail rosa@example.com")


def test_a_caller_only_in_the_contacts_table_pops_up_and_the_wrap_up_reaches_the_record(
    tmp_path: Path, nlu_engine: NLUEngine
) -> None:
    client, settings, agent_id = make_app(tmp_path, nlu_engine)
    with client:
        records = client.app.state.records  # type: ignore[attr-defined]
        with records.database.session() as session:
            session.add(Contact(phone=ONLY_IN_SQL, name="Zoe Quinn", customer_id="C900", tier="silver"))
        service = client.app.state.handoff.service  # type: ignore[attr-defined]
        assert service is not None and client.portal is not None
        context = client.portal.call(answer, service, agent_id, "call-sql", ONLY_IN_SQL)
        assert context.contact is not None
        assert (context.contact.name, context.contact.contact_id, context.contact.source) == \
            ("Zoe Quinn", "C900", "sql")

        client.portal.call(finish, service, agent_id, "call-sql")
        assert client.app.state.voice.services is None  # type: ignore[attr-defined]
        assert records.writer.flush(30)
        with records.database.session() as session:
            row = session.scalar(select(CallRecord).where(CallRecord.call_id == "call-sql"))
        assert row is not None and row.disposition == "follow_up" and row.agent_id == agent_id
        assert row.notes == "call back about order 48215, mail [email]"
    wrap_ups = [e for e in read_call_log(settings.call_log) if e.data.get("stage") == "wrap_up"]
    assert [(e.call_id, e.data["disposition"]) for e in wrap_ups] == [("call-sql", "follow_up")]


def test_a_caller_only_in_the_external_crm_pops_up(tmp_path: Path, nlu_engine: NLUEngine, crm: FakeCrm) -> None:
    client, _settings, agent_id = make_app(tmp_path, nlu_engine, crm_url=crm.url)
    with client:
        service = client.app.state.handoff.service  # type: ignore[attr-defined]
        assert service is not None and client.portal is not None
        context = client.portal.call(answer, service, agent_id, "call-crm", ONLY_IN_CRM)
        assert context.contact is not None
        assert (context.contact.name, context.contact.contact_id, context.contact.tier, context.contact.source) == \
            ("Rosa Diaz", "crm-77", "gold", "crm")
        assert crm.asked == [ONLY_IN_CRM]
        client.portal.call(finish, service, agent_id, "call-crm")

"""The agent directory: agents and their skills, with tokens stored only as hashes.

Stored in one JSON file (one machine) or in Redis (several processes or machines: `handoff.agent_store`),
see `handoff.agent_store`. Every process keeps a parsed copy and re-reads it when the store's change marker
moves, so an agent the CLI adds is seen by running servers on their next look-up."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handoff.agent_store import AgentStore, FileAgentStore, Records
from handoff.errors import RedisUnavailable, UnknownAgent
from handoff.model import Agent

log = logging.getLogger("callpilot.handoff")
UNREACHABLE_PAUSE_S = 10.0  # after the store failed to answer, the copy serves this long before asking again

_NAME = re.compile(r"^[\w .'-]{1,80}$")
_SKILL = re.compile(r"^[a-z][a-z0-9_]*$")
_PHONE = re.compile(r"^(sip|sips?:[\w.!~*'()&=+$,;?/%-]+@[\w.-]+(:\d{1,5})?|\+?\d{3,20})$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_skills(text: str) -> dict[str, int]:
    """`orders,tech:4` -> {"orders": 3, "tech": 4} (level 1-5, default 3)."""
    skills: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, level = part.partition(":")
        if not _SKILL.match(name):
            raise ValueError(f"bad skill name {name!r} (lowercase letters, digits, _)")
        try:
            value = int(level) if level else 3
        except ValueError:
            raise ValueError(f"skill level must be a number 1-5: {part!r}") from None
        if not 1 <= value <= 5:
            raise ValueError(f"skill level must be 1-5: {part!r}")
        skills[name] = value
    if not skills:
        raise ValueError("an agent needs at least one skill, e.g. --skills orders,tech:4")
    return skills


class AgentDirectory:
    """Agents by id and by token hash, kept in an `AgentStore` (a path: the JSON file store).

    `recheck_s`: how long a look-up trusts its copy before asking the store whether it changed (a miss always
    asks); when the store cannot be reached the last copy keeps serving."""

    def __init__(self, store: AgentStore | Path, *, clock: Callable[[], float] = time.time,
                 recheck_s: float = 0.0) -> None:
        self.store: AgentStore = FileAgentStore(store) if isinstance(store, Path) else store
        self._clock = clock
        self._recheck_s = recheck_s
        self._checked_at = float("-inf")
        self._unreachable_until = float("-inf")
        self._agents: Records = {}
        self._parsed: dict[str, Agent] = {}
        self._by_hash: dict[str, str] = {}
        self._stamp: object = None
        self._loaded = False

    @property
    def where(self) -> str:
        return self.store.where

    # Reading.

    def agents(self) -> list[Agent]:
        self._refresh()
        return list(self._parsed.values())

    def get(self, agent_id: str) -> Agent:
        self._refresh()
        agent = self._parsed.get(agent_id)
        if agent is None and self._refresh(force=True):
            agent = self._parsed.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent with id {agent_id!r}")
        return agent

    def by_token(self, token: str) -> Agent:
        """The agent holding this token; UnknownAgent if none does or the token expired."""
        self._refresh()
        agent_id = self._by_hash.get(hash_token(token))  # a hash look-up: no timing to learn from
        if agent_id is None and self._refresh(force=True):
            agent_id = self._by_hash.get(hash_token(token))
        if agent_id is None:
            raise UnknownAgent("unknown agent token")
        agent = self._parsed[agent_id]
        if agent.expires_at is not None and agent.expires_at <= self._clock():
            raise UnknownAgent(f"the token of agent {agent.agent_id!r} has expired")
        return agent

    # Writing (the CLI).

    def add(self, name: str, skills: dict[str, int], *, expires_in_s: float | None = None
            ) -> tuple[Agent, str]:
        """Register an agent; returns it and its token (shown once, stored only as a hash)."""
        if not _NAME.match(name):
            raise ValueError(f"bad agent name {name!r}")
        token = "cpa_" + secrets.token_urlsafe(24)
        now = self._clock()

        def register(agents: Records) -> str:
            base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "agent"
            agent_id, n = base, 1
            while agent_id in agents:
                n += 1
                agent_id = f"{base}-{n}"
            agents[agent_id] = {"agent_id": agent_id, "name": name, "skills": dict(skills),
                                "created_at": now, "token_sha256": hash_token(token),
                                "expires_at": now + expires_in_s if expires_in_s else None}
            return agent_id

        return self.get(self._write(register)), token

    def set_phone(self, agent_id: str, phone: str | None, *, sip_ha1: str | None = None) -> Agent:
        """Bind a phone to the agent (see `Agent.phone`); a registering phone ("sip") needs the HA1 of its
        password (`voice_gateway.transports.sip.registrar.ha1`): the password itself is never stored."""
        phone = (phone or "").strip() or None
        if phone is not None and not _PHONE.match(phone):
            raise ValueError(f"bad phone {phone!r}: 'sip', sip:user@host[:port], or a number such as +8613812345678")
        if phone == "sip" and not (sip_ha1 and re.fullmatch(r"[0-9a-f]{32}", sip_ha1)):
            raise ValueError("a phone that registers ('sip') needs a SIP password")

        def bind(agents: Records) -> None:
            if agent_id not in agents:
                raise UnknownAgent(f"no agent with id {agent_id!r}")
            agents[agent_id]["phone"] = phone
            agents[agent_id]["sip_ha1"] = sip_ha1 if phone == "sip" else None

        self._write(bind)
        return self.get(agent_id)

    def phone_ha1(self, user: str) -> str | None:
        """The SIP digest HA1 of the agent whose phone registers as `user` (None: no such phone)."""
        self._refresh()
        data = self._agents.get(user)
        if data is None and self._refresh(force=True):
            data = self._agents.get(user)
        if data is None or data.get("phone") != "sip":
            return None
        return str(data.get("sip_ha1") or "") or None

    def remove(self, agent_id: str) -> None:
        def drop(agents: Records) -> None:
            if agents.pop(agent_id, None) is None:
                raise UnknownAgent(f"no agent with id {agent_id!r}")

        self._write(drop)

    def _write(self, change: Callable[[Records], Any]) -> Any:
        result = self.store.update(change)
        self._checked_at = float("-inf")
        return result

    def _refresh(self, *, force: bool = False) -> bool:
        """Re-read the store if it changed; True if the copy was re-read."""
        now = time.monotonic()
        if self._loaded and now < self._unreachable_until:
            return False  # the store is down: look-ups (on the event loop) do not wait for it again and again
        if self._loaded and not force and now - self._checked_at < self._recheck_s:
            return False
        try:
            stamp = self.store.stamp()
            if self._loaded and stamp == self._stamp:
                self._checked_at = now
                return False
            agents = self.store.read() if stamp is not None else {}
        except (RedisUnavailable, OSError) as exc:
            if not self._loaded:
                raise
            log.warning("agent directory %s unreachable (%s): using the copy read earlier for %.0f s",
                        self.where, exc, UNREACHABLE_PAUSE_S)
            self._checked_at = now
            self._unreachable_until = now + UNREACHABLE_PAUSE_S
            return False
        self._checked_at = now
        self._load(agents, stamp)
        return True

    def _load(self, agents: Records, stamp: object) -> None:
        self._agents, self._stamp, self._loaded = agents, stamp, True
        self._parsed = {a.agent_id: a for a in sorted((_agent(d) for d in agents.values()),
                                                      key=lambda a: a.agent_id)}
        self._by_hash = {str(d["token_sha256"]): str(d["agent_id"]) for d in agents.values()}


def _agent(data: dict[str, Any]) -> Agent:
    return Agent(agent_id=data["agent_id"], name=data["name"],
                 skills={str(k): int(v) for k, v in data["skills"].items()},
                 created_at=float(data.get("created_at") or 0.0), expires_at=data.get("expires_at"),
                 phone=data.get("phone") or None)

"""Bearer API keys: `cp_<key_id>_<secret>`; the store keeps a salted SHA-256 of the secret, never the key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callpilot.records.models import ApiKey, AuditEntry, utcnow

ROLES = ("admin", "supervisor", "agent", "trainer")
PREFIX = "cp"


class UnknownRole(ValueError):
    """A role that is not one of ROLES."""


@dataclass(frozen=True)
class Principal:
    """Who is calling the API: the key's public id, its name and its role."""

    key_id: str
    name: str
    role: str
    agent_id: str | None = None  # role agent: the agent whose calls (and callers) this key may see

    @property
    def actor(self) -> str:
        return f"apikey:{self.key_id}"


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    agent_id: str | None = None


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UnknownRole(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def _digest(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


class MissingAgent(ValueError):
    """An agent key must name its agent (it sees only that agent's calls); other roles must not."""


def create_key(session: Session, role: str, name: str = "", *, agent_id: str | None = None,
               actor: str = "cli") -> str:
    """Store a new key and return it in full (the only time it is ever shown). A key of role agent names the
    agent (`agent_id`, as in `callpilot agent list`) whose calls and callers it may see."""
    check_role(role)
    if role == "agent" and not agent_id:
        raise MissingAgent("an agent key sees only its agent's calls: name the agent (--agent AGENT_ID)")
    if role != "agent" and agent_id:
        raise MissingAgent(f"only agent keys name an agent; a {role} key sees what its role allows")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(24), secrets.token_hex(16)
    session.add(ApiKey(key_id=key_id, name=name, role=role, salt=salt, secret_hash=_digest(salt, secret),
                       agent_id=agent_id))
    session.add(AuditEntry(actor=actor, action="apikey.create", target=key_id,
                           detail={"role": role, "name": name, "agent_id": agent_id}))
    return f"{PREFIX}_{key_id}_{secret}"


def verify_key(session: Session, token: str) -> Principal | None:
    """The principal for a presented key, or None if it is malformed, unknown, revoked or wrong."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _digest(row.salt, secret)):
        return None
    row.last_used_at = utcnow()
    return Principal(row.key_id, row.name, row.role, row.agent_id)


def list_keys(session: Session) -> list[KeyInfo]:
    rows = session.scalars(select(ApiKey).order_by(ApiKey.id))
    return [KeyInfo(r.key_id, r.name, r.role, r.created_at, r.revoked_at, r.last_used_at, r.agent_id) for r in rows]


def revoke_key(session: Session, key_id: str, *, actor: str = "cli") -> bool:
    """Revoke a key by its id (the part after `cp_`); False if there is no such key."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(AuditEntry(actor=actor, action="apikey.revoke", target=key_id, detail={}))
    return True

"""Where the agent directory lives: a JSON file (one machine) or Redis (every process on every machine).

Both hold the same records (`{"agent_id": ..., "name": ..., "skills": ..., "token_sha256": ...}`) and offer
the same three operations: a cheap change marker (`stamp`), a full read, and an atomic read-modify-write
(`update`). `handoff.directory.AgentDirectory` keeps a parsed copy and re-reads when the stamp moves."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import redis

from bot.urls import mask_url, mask_urls_in
from handoff.errors import RedisUnavailable

log = logging.getLogger("callpilot.handoff")
T = TypeVar("T")
Records = dict[str, dict[str, Any]]


class AgentStore(Protocol):
    """What the directory needs from its storage."""

    @property
    def where(self) -> str:
        """Said to the operator: `added agent ann to <where>`."""

    def stamp(self) -> object:
        """Changes whenever the records change (None: no directory yet)."""

    def read(self) -> Records: ...

    def update(self, change: Callable[[Records], T]) -> T:
        """Apply `change` to the current records and store the result atomically; returns what it returned."""


class FileAgentStore:
    """One JSON file; writes take a lock file and replace the file atomically (fsync, then rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def stamp(self) -> object:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_ino)

    def read(self) -> Records:
        return read_file(self.path)

    def update(self, change: Callable[[Records], T]) -> T:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = read_file(self.path)
            result = change(records)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".agents-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"agents": list(records.values())}, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        return result


class RedisAgentStore:
    """A Redis hash (agent id -> JSON record) and a version counter bumped by every write, in one transaction
    watched on the counter, so two writers on two machines never lose each other's change."""

    def __init__(self, client: redis.Redis, *, hash_key: str, version_key: str, url: str | None = None) -> None:
        self._client = client
        self._hash, self._version = hash_key, version_key
        self._url = url

    @property
    def where(self) -> str:
        return f"Redis at {mask_url(self._url)} (key {self._hash})" if self._url else f"Redis (key {self._hash})"

    def stamp(self) -> object:
        with self._reachable():
            return self._client.get(self._version)

    def read(self) -> Records:
        with self._reachable():
            return _records(self._client.hgetall(self._hash), self._hash)

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError) as exc:
            raise RedisUnavailable(f"agent directory: cannot reach {self.where}: {mask_urls_in(str(exc))}") from None

    def update(self, change: Callable[[Records], T]) -> T:
        with self._reachable(), self._client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._version)  # type: ignore[no-untyped-call]
                    records = _records(pipe.hgetall(self._hash), self._hash)
                    result = change(records)
                    pipe.multi()
                    pipe.delete(self._hash)
                    if records:
                        pipe.hset(self._hash, mapping={k: json.dumps(v) for k, v in records.items()})
                    pipe.incr(self._version)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another writer got there first: read again

    def import_file(self, path: Path) -> int:
        """Copy a file directory into a Redis one never written (moving from one process to several); returns how
        many agents were copied (0: Redis has had a directory already - even one emptied since -, or no file)."""
        with self._reachable():
            if not path.exists() or self._client.exists(self._version):
                return 0
        found = read_file(path)

        def copy(records: Records) -> int:
            if records or not found:
                return 0
            records.update(found)
            return len(found)

        copied = self.update(copy)
        if copied:
            log.info("agent directory: copied %d agents from %s into %s", copied, path, self.where)
        return copied


def read_file(path: Path) -> Records:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
        return {str(a["agent_id"]): a for a in data["agents"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid agent directory: {exc}") from None


def _records(raw: Any, where: str) -> Records:
    records: Records = {}
    for agent_id, text in dict(raw).items():
        try:
            records[str(agent_id)] = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{where}: agent {agent_id!r} is not valid JSON: {exc}") from None
    return records

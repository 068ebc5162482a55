"""Edits to `nlu_data/` as a trainer makes them: round-trip YAML (comments, order and format kept), validated
like `callpilot data validate` before anything is written, guarded by a version (etag) and committed to git
when the folder is a git repository.

Layers as in the loader: the files are read once into (path, text) pairs, every edit is a pure function of
those texts, the result is validated in memory, and only a valid result touches disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.language import detect_language
from bot.training_data import load_texts, validate_texts
from bot.training_data.model import DataError, Problem
from bot.training_data.project import language_of
from bot.training_data.reader import read_texts
from callpilot.trainer.markup import example_line

NEW_INTENTS_FILE = "nlu/trainer.yml"  # where intents created on the workbench live (unless one exists)
Texts = dict[str, str]


class EditRefused(ValueError):
    """The edit would break the data (every problem as `file:line: reason`) or names something unknown."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class VersionConflict(RuntimeError):
    """Someone saved since this version was read: reload, then edit again."""


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _load(text: str) -> Any:
    return _yaml().load(text)


def _dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _examples(block: str) -> list[str]:
    return [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]


@dataclass
class DataFolder:
    """The texts of one data folder at one version."""

    root: Path
    texts: Texts

    @classmethod
    def read(cls, root: Path) -> DataFolder:
        pairs, problems = read_texts(root)
        if problems:
            raise EditRefused([str(p) for p in problems])
        return cls(root, dict(pairs))

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.texts):
            digest.update(path.encode() + b"\0" + self.texts[path].encode() + b"\0")
        return digest.hexdigest()[:20]

    def intent_file(self, intent: str, language: str = "en") -> str | None:
        """The NLU file where `intent`'s examples in `language` live (`nlu_data/zh/...` for Chinese)."""
        for path in sorted(self.texts):
            if language_of(path, self.root.as_posix()) != language:
                continue
            data = _load(self.texts[path]) if "- intent:" in self.texts[path] else None
            if isinstance(data, dict) and isinstance(data.get("nlu"), list) and any(
                    isinstance(e, dict) and e.get("intent") == intent for e in data["nlu"]):
                return path
        return None

    def domain_file(self) -> str:
        for path in sorted(self.texts):
            data = _load(self.texts[path])
            if isinstance(data, dict) and ("intents" in data or "responses" in data):
                return path
        raise EditRefused([f"{self.root}: no domain file (with intents: or responses:)"])

    def intents(self) -> list[dict[str, Any]]:
        project = load_texts(list(self.texts.items()), self.root.as_posix())
        counts: dict[str, int] = {}
        for example in project.nlu.examples:
            counts[example.intent] = counts.get(example.intent, 0) + 1
        return [{"intent": name, "examples": counts.get(name, 0), "file": self.intent_file(name)}
                for name in sorted(set(project.domain.intents) | set(counts))]

    def entities(self) -> list[str]:
        """The entity names the domain declares (an example may mark only these)."""
        return list(load_texts(list(self.texts.items()), self.root.as_posix()).domain.entities)

    def examples(self, intent: str) -> list[str]:
        path = self.intent_file(intent)
        if path is None:
            return []
        entry = _intent_entry(_load(self.texts[path]), intent)
        return _examples(str(entry.get("examples") or ""))

    def responses(self) -> dict[str, list[str]]:
        data = _load(self.texts[self.domain_file()])
        found = data.get("responses") or {}
        return {name: [str(v.get("text", "")) for v in variants if isinstance(v, dict)]
                for name, variants in found.items()}


def _intent_entry(data: Any, intent: str) -> Any:
    for entry in data.get("nlu") or []:
        if isinstance(entry, dict) and entry.get("intent") == intent:
            return entry
    raise EditRefused([f"unknown intent {intent!r}"])


def add_examples(folder: DataFolder, intent: str, lines: list[str], *, new_intent: bool = False) -> Texts:
    """The texts with `lines` (Rasa markup) appended to `intent`'s examples; a new intent is declared too.
    Chinese lines go to the intent's Chinese file (`nlu_data/zh/`), the others to its English one."""
    chinese = [line for line in lines if detect_language(line) == "zh"]
    if chinese and len(chinese) < len(lines):
        changed_zh = add_examples(folder, intent, chinese, new_intent=new_intent)
        rest = DataFolder(folder.root, {**folder.texts, **changed_zh})
        return {**changed_zh, **add_examples(rest, intent, [line for line in lines if line not in chinese])}
    language = "zh" if chinese else "en"
    path = folder.intent_file(intent, language)
    changed: Texts = {}
    if path is None:
        known = folder.intent_file(intent) is not None  # an English intent's first Chinese examples
        if not new_intent and not (known and language != "en"):
            raise EditRefused([f"unknown intent {intent!r}: create it, or pick one of the existing intents"])
        new_file = NEW_INTENTS_FILE if language == "en" else f"{language}/{NEW_INTENTS_FILE}"
        path = (folder.root / new_file).as_posix()
        data = _load(folder.texts[path]) if path in folder.texts else _load('version: "3.1"\nnlu: []\n')
        if not isinstance(data.get("nlu"), list) or not data["nlu"]:
            data["nlu"] = CommentedSeq()
        data["nlu"].append(CommentedMap([("intent", intent), ("examples", LiteralScalarString(""))]))
        domain_path = folder.domain_file()
        domain = _load(folder.texts[domain_path])
        if intent not in (domain.get("intents") or []):
            domain.setdefault("intents", CommentedSeq()).append(intent)
            changed[domain_path] = _dump(domain)
    elif new_intent:
        raise EditRefused([f"{path}: intent {intent!r} exists already"])
    else:
        data = _load(folder.texts[path])
    entry = _intent_entry(data, intent)
    block = str(entry.get("examples") or "")
    if block and not block.endswith("\n"):
        block += "\n"
    existing = {line.lower() for line in _examples(block)}
    block += "".join(f"- {line}\n" for line in lines if line.lower() not in existing)
    entry["examples"] = LiteralScalarString(block)
    changed[path] = _dump(data)
    return changed


def replace_example(folder: DataFolder, intent: str, old: str, new: str | None) -> Texts:
    """The texts with example `old` of `intent` replaced by `new` (None: deleted)."""
    path = folder.intent_file(intent)
    if path is None:
        raise EditRefused([f"unknown intent {intent!r}"])
    data = _load(folder.texts[path])
    entry = _intent_entry(data, intent)
    out, found = [], False
    for line in str(entry.get("examples") or "").splitlines(keepends=True):
        if not found and line.strip() == f"- {old}":
            found = True
            if new is not None:
                out.append(line[: len(line) - len(line.lstrip())] + f"- {new}\n")
            continue
        out.append(line)
    if not found:
        raise EditRefused([f"{path}: intent {intent!r} has no example {old!r}"])
    entry["examples"] = LiteralScalarString("".join(out))
    return {path: _dump(data)}


def set_response(folder: DataFolder, name: str, texts: list[str] | None) -> Texts:
    """The texts with response `name`'s variants set to `texts` (None: the response deleted)."""
    path = folder.domain_file()
    data = _load(folder.texts[path])
    responses = data.setdefault("responses", CommentedMap())
    if texts is None:
        if name not in responses:
            raise EditRefused([f"{path}: no response {name!r}"])
        del responses[name]
    else:
        if not texts or any(not t.strip() for t in texts):
            raise EditRefused([f"{path}: response {name!r} needs at least one non-empty text"])
        responses[name] = CommentedSeq(CommentedMap([("text", t)]) for t in texts)
    return {path: _dump(data)}


class DataEditor:
    """Saves edits to one data folder: one at a time, each against the version it was made on."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def read(self) -> DataFolder:
        return DataFolder.read(self.root)

    def save(self, version: str | None, edit: Callable[[DataFolder], Texts], *, author: str,
             message: str) -> str:
        """Apply `edit` if the data is still at `version` (None: whatever it is now); returns the new version.
        Raises VersionConflict, or EditRefused with `file:line: reason` (nothing is written then)."""
        with self._lock:
            folder = self.read()
            if version is not None and version != folder.version:
                raise VersionConflict(f"the data changed since version {version} (now {folder.version}): "
                                      "reload and make the change again")
            changed = {path: text for path, text in edit(folder).items() if folder.texts.get(path) != text}
            merged = {**folder.texts, **changed}
            errors = [p for p in validate_texts(list(merged.items()), self.root.as_posix())
                      if p.severity == "error"]
            if errors:
                raise EditRefused([_problem(p) for p in errors])
            for path, text in changed.items():
                _write_atomically(Path(path), text)
            if changed:
                commit(self.root, sorted(changed), author=author, message=message)
            return DataFolder(self.root, merged).version


def _problem(problem: Problem) -> str:
    return f"{problem.location}: {problem.message}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def commit(root: Path, paths: list[str], *, author: str, message: str) -> bool:
    """One commit of `paths` by `author` when `root` is (inside) a git work tree's top; False when it is not."""
    if not (root / ".git").exists():
        return False
    name = author or "trainer"
    identity = ["-c", f"user.name={name}", "-c", "user.email=trainer@callpilot.invalid"]
    relative = [Path(p).resolve().relative_to(root.resolve()).as_posix() for p in paths]
    for command in (["add", "--", *relative],
                    [*identity, "commit", "-q", "-m", message, f"--author={name} <trainer@callpilot.invalid>",
                     "--", *relative]):
        done = subprocess.run(["git", "-C", str(root), *command], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"git {command[0]} in {root} failed: {done.stderr.strip() or done.stdout.strip()}")
    return True


__all__ = ["DataEditor", "DataError", "DataFolder", "EditRefused", "VersionConflict", "add_examples",
           "example_line", "replace_example", "set_response"]

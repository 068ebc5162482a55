"""The import rules of docs/architecture.md: each part imports only what the table allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("bot", "callpilot", "voice_gateway", "handoff")
ALLOWED: dict[str, set[str]] = {
    "bot.training_data": set(),
    "bot.urls": set(),  # mask_url: every URL we print or return, credentials masked
    "bot.places": set(),  # the world gazetteer (GeoNames cities)
    "bot.language": set(),  # a text's language (by script), Chinese numerals, traditional -> simplified
    "bot.nlu": {"bot.training_data", "bot.places", "bot.language"},
    "bot.ivr": {"bot.training_data"},
    "bot.backoffice": {"bot.places", "bot.language"},
    "bot.dialogue": {"bot.training_data", "bot.ivr", "bot.backoffice", "bot.urls", "bot.language"},
    "bot.rasa_brain": {"bot.training_data", "bot.urls"},
    "voice_gateway.audio": set(),
    "voice_gateway.call_log": set(),  # the call log file: events in, JSON lines out
    "voice_gateway.memory": set(),  # freed C-heap memory given back to the system (glibc malloc_trim)
    "voice_gateway.recording": set(),
    "voice_gateway.twiml": set(),
    "voice_gateway.twilio_security": set(),
    # the simulated callers (tests, benchmarks, `callpilot call`): the wire protocols, never the pipeline
    "voice_gateway.caller_lines": {"voice_gateway.events", "voice_gateway.transports"},
    "voice_gateway.sip_caller": {"voice_gateway.audio", "voice_gateway.caller_lines", "voice_gateway.events",
                                 "voice_gateway.transports"},
    "voice_gateway.simulated_caller": {"voice_gateway.audio", "voice_gateway.caller_lines", "voice_gateway.events"},
    "voice_gateway.events": set(),
    "voice_gateway.transports": {"voice_gateway.events", "voice_gateway.audio"},
    "voice_gateway.vad": {"voice_gateway.audio"},
    "voice_gateway.twilio_rest": set(),  # Twilio's REST API (callbacks, transfers)
    "voice_gateway.asr": {"voice_gateway.vad", "voice_gateway.audio", "voice_gateway.memory"},
    "voice_gateway.tts": {"voice_gateway.audio", "voice_gateway.memory"},
    "voice_gateway.pipeline": {
        "voice_gateway.events", "voice_gateway.audio", "voice_gateway.transports", "voice_gateway.vad",
        "voice_gateway.asr", "voice_gateway.tts", "voice_gateway.recording", "voice_gateway.call_log",
        "bot.dialogue",
    },
    # The voice test harness (tests, benchmarks): a call through the pipeline on an in-memory line, callers in
    # real time, synthetic speech
    "voice_gateway.testing": {
        "voice_gateway.pipeline", "voice_gateway.caller_lines", "voice_gateway.call_log", "voice_gateway.events",
        "voice_gateway.transports", "voice_gateway.tts", "voice_gateway.audio", "bot.dialogue",
    },
    # Human handoff: the bot's HandoffDecision and conversation state in, the demo customers for contacts.
    "handoff": {"bot.dialogue", "bot.backoffice", "bot.urls"},
    # KPIs, dashboard, metrics, alerts, webhooks: the records and settings, never the voice or handoff code
    # (the pipeline and the handoff service are reached through protocols the app wires).
    "callpilot.ops": {"callpilot", "callpilot.records", "bot.urls"},
    # Call records: settings, the demo customers, the handoff's Contact, call-log events in; never the voice
    # pipeline or the handoff service.
    "callpilot.records": {"callpilot", "bot.backoffice", "bot.urls", "handoff", "voice_gateway.call_log"},
}
SUBPARTS = ("callpilot.ops", "callpilot.records")  # callpilot's parts with rules of their own


def _part(module: str) -> str:
    parts = module.split(".")
    if parts[0] in ("bot", "voice_gateway") or ".".join(parts[:2]) in SUBPARTS:
        return ".".join(parts[:2])
    return parts[0]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_part_imports_only_what_the_table_allows(part: str) -> None:
    folder = ROOT / part.replace(".", "/")
    paths = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    bad = []
    for path in paths:
        for module in _imports(path):
            target = _part(module)
            if target != part and target not in ALLOWED[part]:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def _module_graph() -> dict[str, set[str]]:
    """Every module of ours -> the modules of ours it imports (at any level, TYPE_CHECKING blocks included)."""
    modules: dict[str, Path] = {}
    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    edges.add(target if target in modules else resolve(node.module) or "")
            elif isinstance(node, ast.Import):
                edges.update(resolve(alias.name) or "" for alias in node.names)
        graph[name] = {e for e in edges if e and e != name and e.split(".")[0] in OURS}
    return graph


def test_no_module_imports_itself_back() -> None:
    """No import cycles between our modules, not even through a function-level or TYPE_CHECKING import."""
    graph = _module_graph()
    cycles, seen = [], set()
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start and len(path) > 1:
                    cycle = frozenset(path)
                    if cycle not in seen:
                        seen.add(cycle)
                        cycles.append(" -> ".join([*path, start]))
                elif nxt not in path and nxt > start and len(path) < 6:
                    stack.append((nxt, [*path, nxt]))
    assert not cycles, "\n".join(cycles)


def test_every_part_has_a_row() -> None:
    parts = {_part(name) for name in _module_graph()}
    missing = sorted(p for p in parts if p not in ALLOWED and p not in ("bot", "voice_gateway", "callpilot"))
    assert not missing, f"parts without a row in ALLOWED: {missing}"

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
    "voice_gateway.events": set(),
    "voice_gateway.transports": {"voice_gateway.events", "voice_gateway.audio"},
    "voice_gateway.vad": set(),
    "voice_gateway.twilio_rest": set(),  # Twilio's REST API (callbacks, transfers)
    "voice_gateway.asr": {"voice_gateway.vad"},
    "voice_gateway.tts": {"voice_gateway.audio"},
    "voice_gateway.pipeline": {
        "voice_gateway.events", "voice_gateway.audio", "voice_gateway.transports", "voice_gateway.vad",
        "voice_gateway.asr", "voice_gateway.tts", "voice_gateway.recording", "voice_gateway.call_log",
        "bot.dialogue",
    },
    # Human handoff: the bot's HandoffDecision and conversation state in, the demo customers for contacts.
    "handoff": {"bot.dialogue", "bot.backoffice", "bot.urls"},
    # KPIs, dashboard, metrics, alerts, webhooks: the records and settings, never the voice or handoff code
    # (the pipeline and the handoff service are reached through protocols the app wires).
    "callpilot.ops": {"callpilot", "callpilot.records", "bot.urls"},
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

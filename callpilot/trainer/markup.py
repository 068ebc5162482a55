"""An annotation (text + entity spans) as one line of Rasa markup, with the bad inputs refused."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.training_data import MarkupError, parse_markup

MAX_EXAMPLE_CHARS = 500


def example_line(text: str, entities: Sequence[Mapping[str, Any]] = ()) -> str:
    """`i live in [Boston](city)` from "i live in Boston" and [{"start": 10, "end": 16, "entity": "city"}].

    Raises ValueError for an empty or over-long text, a span outside the text, overlapping spans, a `value`
    that disagrees with the span, or text that would read as markup.
    """
    text = " ".join(text.split())
    if not text:
        raise ValueError("the example is empty")
    if len(text) > MAX_EXAMPLE_CHARS:
        raise ValueError(f"the example has {len(text)} characters; at most {MAX_EXAMPLE_CHARS}")
    if any(ch in text for ch in "[]{}") or text.startswith(("#", "-")):
        raise ValueError("the example may not contain [ ] { } or start with # or -")
    spans = []
    for raw in entities:
        try:
            start, end, entity = int(raw["start"]), int(raw["end"]), str(raw["entity"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"an entity needs start, end and entity: {dict(raw)!r}") from None
        if not (0 <= start < end <= len(text)):
            raise ValueError(f"entity {entity!r} span {start}-{end} is not inside the text ({len(text)} chars)")
        if "value" in raw and raw["value"] is not None and not isinstance(raw["value"], str):
            raise ValueError(f"entity {entity!r}: value must be text")
        if not entity.replace("_", "").isalnum():
            raise ValueError(f"entity name {entity!r} must be letters, digits and _")
        spans.append((start, end, entity, raw.get("value")))
    spans.sort()
    for (_, end, name, _v), (start, _e, other, _w) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"entities {name!r} and {other!r} overlap")
    out, at = [], 0
    for start, end, entity, value in spans:
        piece = text[start:end]
        if piece != piece.strip() or not piece.strip():
            raise ValueError(f"entity {entity!r} span {start}-{end} starts or ends with a space")
        tag = entity if value in (None, piece) else json.dumps({"entity": entity, "value": value})
        out += [text[at:start], f"[{piece}]", f"({tag})" if not tag.startswith("{") else tag]
        at = end
    out.append(text[at:])
    line = "".join(out)
    try:
        plain, _ = parse_markup(line)
    except MarkupError as exc:
        raise ValueError(str(exc)) from None
    if plain != text:
        raise ValueError("the example does not survive Rasa markup")
    return line

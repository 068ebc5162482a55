"""What the trainer sees of the inbox and does with it: open items and their clusters; assign (each item with the
entities marked on its own text), create an intent, out of scope, dismiss. Resolved items leave the inbox and
stay in the table with who and when."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from callpilot.records.models import InboxItem, utcnow
from callpilot.trainer.clusters import cluster
from callpilot.trainer.data_edit import DataEditor, DataFolder, EditRefused, Texts, add_examples
from callpilot.trainer.markup import example_line

STATUSES = ("open", "done", "out_of_scope", "dismissed")
OUT_OF_SCOPE = "out_of_scope"
Vectorise = Callable[[list[str]], npt.NDArray[Any]]
Spans = Sequence[Mapping[str, Any]]  # entity spans: start, end, entity, value (markup.example_line)


def item_dict(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id, "text": item.text, "language": item.language, "reason": item.reason,
        "predicted_intent": item.predicted_intent, "confidence": item.confidence, "count": item.count,
        "call_id": item.call_id, "channel": item.channel,
        "transcript_url": f"/api/v1/calls/{item.call_id}" if item.call_id else None,
        "first_seen_at": item.first_seen_at.isoformat(), "last_seen_at": item.last_seen_at.isoformat(),
        "status": item.status, "resolution": item.resolution, "resolved_by": item.resolved_by,
        "resolved_at": item.resolved_at.isoformat() if item.resolved_at else None,
    }


def listing(session: Session, *, status: str = "open", limit: int = 500,
            vectorise: Vectorise | None = None) -> dict[str, Any]:
    """Items (most callers first) and, when sentence vectors are at hand, their clusters."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    items = list(session.scalars(select(InboxItem).where(InboxItem.status == status)
                                 .order_by(InboxItem.count.desc(), InboxItem.last_seen_at.desc()).limit(limit)))
    clusters: list[dict[str, Any]] = []
    if vectorise is not None and items:
        vectors = np.asarray(vectorise([i.text for i in items]))
        clusters = [c.to_dict() for c in cluster([i.id for i in items], [i.text for i in items],
                                                 [i.count for i in items], vectors)]
    return {"items": [item_dict(i) for i in items], "clusters": clusters}


def _open_items(session: Session, ids: Sequence[int]) -> list[InboxItem]:
    if not ids:
        raise EditRefused(["no inbox items given"])
    items = list(session.scalars(select(InboxItem).where(InboxItem.id.in_(list(ids)))))
    missing = set(ids) - {i.id for i in items}
    if missing:
        raise LookupError(f"no inbox item {', '.join(str(i) for i in sorted(missing))}")
    closed = [i.id for i in items if i.status != "open"]
    if closed:
        raise EditRefused([f"inbox item {i} is already resolved" for i in closed])
    order = {item_id: n for n, item_id in enumerate(dict.fromkeys(ids))}
    return sorted(items, key=lambda item: order[item.id])  # the examples are written in the order given


def annotate(session: Session, editor: DataEditor, ids: Sequence[int], intent: str, *, by: str,
             entities: Spans = (), item_entities: Mapping[int, Spans] | None = None, new_intent: bool = False,
             version: str | None = None, status: str = "done") -> str:
    """Write the items' texts as examples of `intent`, each with its own entity spans, then close them.

    `item_entities` maps an item's id to the spans marked on its text; `entities` are the spans of a lone item.
    Returns the data's new version; nothing changes when the data edit is refused (every bad item named)."""
    items = _open_items(session, ids)
    spans = _spans_by_item(items, entities, item_entities or {})
    lines = _example_lines(items, spans)

    def edit(folder: DataFolder) -> Texts:
        _check_entity_names(folder, items, spans)
        return add_examples(folder, intent, lines, new_intent=new_intent)

    what = "new intent" if new_intent else "intent"
    new_version = editor.save(version, edit, author=by,
                              message=f"trainer: {len(lines)} inbox example(s) to {what} {intent}")
    file = editor.read().intent_file(intent)
    for item in items:
        _close(item, status, by, {"intent": intent, "entities": [dict(e) for e in spans[item.id]], "file": file})
    return new_version


def _spans_by_item(items: Sequence[InboxItem], entities: Spans,
                   item_entities: Mapping[int, Spans]) -> dict[int, Spans]:
    """Each item's own spans; spans without an item only when there is one item to give them to."""
    if entities and len(items) > 1:
        raise EditRefused(["entities without an item cannot go on several items: give each item its own entities"])
    if entities and any(item_entities.values()):
        raise EditRefused(["entities were given both for the item and per item: give them once"])
    ids = {item.id for item in items}
    strays = sorted(set(item_entities) - ids)
    if strays:
        raise EditRefused([f"entities for inbox item {i}, which is not among the items assigned" for i in strays])
    if entities:
        return {items[0].id: entities}
    return {item.id: item_entities.get(item.id, ()) for item in items}


def _named(item: InboxItem) -> str:
    text = item.text if len(item.text) <= 60 else item.text[:57] + "..."
    return f"inbox item {item.id} ({text!r})"


def _example_lines(items: Sequence[InboxItem], spans: Mapping[int, Spans]) -> list[str]:
    """One line of Rasa markup per item; every item whose spans do not fit its text is named."""
    lines, problems = [], []
    for item in items:
        try:
            lines.append(example_line(item.text, spans[item.id]))
        except ValueError as exc:
            problems.append(f"{_named(item)}: {exc}")
    if problems:
        raise EditRefused(problems)
    return lines


def _check_entity_names(folder: DataFolder, items: Sequence[InboxItem], spans: Mapping[int, Spans]) -> None:
    """Entities the domain does not declare, named per item (validation would only name the file line)."""
    declared = set(folder.entities())
    problems = [f"{_named(item)}: unknown entity {span['entity']!r}; the domain declares "
                f"{', '.join(sorted(declared)) or 'none'}"
                for item in items for span in spans[item.id] if span["entity"] not in declared]
    if problems:
        raise EditRefused(problems)


def mark_out_of_scope(session: Session, editor: DataEditor, ids: Sequence[int], *, by: str,
                      version: str | None = None) -> str:
    """The bot should not answer these: they become `out_of_scope` examples."""
    return annotate(session, editor, ids, OUT_OF_SCOPE, by=by, version=version, status="out_of_scope")


def dismiss(session: Session, ids: Sequence[int], *, by: str) -> None:
    for item in _open_items(session, ids):
        _close(item, "dismissed", by, {})


def _close(item: InboxItem, status: str, by: str, resolution: dict[str, Any]) -> None:
    item.status, item.resolved_by, item.resolved_at, item.resolution = status, by, utcnow(), resolution

"""What the workbench's requests carry (`api.py`): annotations with entity spans, item ids, data edits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ITEMS = 1000  # inbox items in one request


class EntitySpanIn(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    entity: str = Field(min_length=1, max_length=64)
    value: str | None = None


class Annotation(BaseModel):
    intent: str = Field(min_length=1, max_length=128)
    entities: list[EntitySpanIn] = Field(default_factory=list)
    new_intent: bool = False
    version: str | None = None  # the data version the trainer saw (else: If-Match)


class ItemEntities(BaseModel):
    """One inbox item and the entity spans marked on its own text (offsets into that item's text)."""

    id: int
    entities: list[EntitySpanIn] = Field(default_factory=list, max_length=50)


class ClusterAnnotation(Annotation):
    """Several items to one intent: `item_ids` (no entities), `items` (each with its own entities), or both.
    The top-level `entities` are for a lone item only."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "intent": "check_order_status", "version": "3f2a9c0d1e4b5a6c7d8e",
        "items": [{"id": 17, "entities": [{"start": 15, "end": 20, "entity": "order_number"}]},
                  {"id": 18, "entities": [{"start": 10, "end": 15, "entity": "order_number"}]}],
        "item_ids": [19]}]})

    item_ids: list[int] = Field(default_factory=list, max_length=MAX_ITEMS)
    items: list[ItemEntities] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _each_item_once(self) -> ClusterAnnotation:
        marked = [item.id for item in self.items]
        if not self.item_ids and not marked:
            raise ValueError("no items: give item_ids, items (each with its own entities) or both")
        twice = sorted({i for i in marked if marked.count(i) > 1})
        if twice:
            raise ValueError(f"inbox item {', '.join(map(str, twice))} is in items more than once")
        if len(self.ids()) > MAX_ITEMS:
            raise ValueError(f"at most {MAX_ITEMS} items at once")
        return self

    def ids(self) -> list[int]:
        """Every item assigned, once each, in the order given."""
        return list(dict.fromkeys([*self.item_ids, *(item.id for item in self.items)]))

    def item_entities(self) -> dict[int, list[dict[str, Any]]]:
        return {item.id: [e.model_dump() for e in item.entities] for item in self.items if item.entities}


class ItemIds(BaseModel):
    item_ids: list[int] = Field(min_length=1, max_length=MAX_ITEMS)
    version: str | None = None


class ExampleIn(BaseModel):
    text: str = Field(max_length=10_000)
    entities: list[EntitySpanIn] = Field(default_factory=list)
    version: str | None = None


class ExampleEdit(BaseModel):
    old: str
    new: str | None = None  # None deletes
    version: str | None = None


class ResponseIn(BaseModel):
    texts: list[str] | None = None  # None deletes
    version: str | None = None


class Activation(BaseModel):
    override: bool = False  # activate even though it fails conversation tests


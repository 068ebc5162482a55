"""What the workbench's requests carry (`api.py`): annotations with entity spans, item ids, data edits."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class ClusterAnnotation(Annotation):
    item_ids: list[int] = Field(min_length=1, max_length=1000)


class ItemIds(BaseModel):
    item_ids: list[int] = Field(min_length=1, max_length=1000)
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


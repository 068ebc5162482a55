"""Places callers name: every city of 15,000 people or more, in English and Chinese (see `gazetteer`)."""

from bot.places.gazetteer import Gazetteer, Place, default_gazetteer

__all__ = ["Gazetteer", "Place", "default_gazetteer"]

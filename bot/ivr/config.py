"""Typed IVR menu configuration, as loaded from `nlu_data/ivr.yml`."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.training_data.model import Location, Problem

DEFAULT_SKILLS: frozenset[str] = frozenset({"orders", "returns", "tech", "billing", "general"})
MEMORY = Location("<memory>")


@dataclass(frozen=True)
class MenuAction:
    """Go to a sub-menu."""

    menu: str
    prompt: str = ""
    location: Location = MEMORY


@dataclass(frozen=True)
class IntentAction:
    """Leave the IVR and hand an intent (with the collected slots) to the dialogue engine."""

    intent: str
    prompt: str = ""
    location: Location = MEMORY


@dataclass(frozen=True)
class ResponseAction:
    """Say a domain response, then prompt the same menu again."""

    response: str
    prompt: str = ""
    location: Location = MEMORY


@dataclass(frozen=True)
class HandoffAction:
    """Leave the IVR and queue the call for a human skill group."""

    skill: str
    prompt: str = ""
    location: Location = MEMORY


@dataclass(frozen=True)
class HangUpAction:
    """Say the prompt (if any) and end the call."""

    prompt: str = ""
    location: Location = MEMORY


@dataclass(frozen=True)
class SpeechAction:
    """Leave the IVR and go back to talking with the bot."""

    prompt: str = ""
    location: Location = MEMORY


@dataclass(frozen=True)
class CollectAction:
    """Collect a multi-digit number into a slot, then carry out `then`."""

    slot: str
    prompt: str
    then: Action
    min_digits: int = 1
    max_digits: int = 20
    prefix: str = ""  # prepended to the digits in the slot value ("R" + "123456")
    invalid_prompt: str = ""  # empty: use the menu's invalid_prompt
    location: Location = MEMORY


Action = (
    MenuAction | IntentAction | ResponseAction | HandoffAction | HangUpAction | SpeechAction | CollectAction
)


@dataclass(frozen=True)
class Menu:
    """One menu with its options; every setting already has the defaults applied."""

    name: str
    prompt: str
    options: dict[str, Action]
    # Timeouts and limits
    timeout: float = 6.0
    max_retries: int = 3
    # Prompts
    invalid_prompt: str = "Sorry, that is not a valid choice."
    no_input_prompt: str = "Sorry, I didn't hear a key press."
    agent_prompt: str = ""
    # Escalation
    on_max_retries: Action = HandoffAction("general")
    agent_skill: str = "general"
    location: Location = MEMORY


@dataclass(frozen=True)
class IvrConfig:
    """All menus of one IVR, with the entry menu and any loader warnings."""

    start: str
    menus: dict[str, Menu]
    path: str = "<memory>"
    start_location: Location = MEMORY
    warnings: tuple[Problem, ...] = ()
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.routes:
            object.__setattr__(self, "routes", compute_routes(self.start, self.menus))

    def menu(self, name: str) -> Menu:
        """The menu called `name`; raises UnknownMenu."""
        try:
            return self.menus[name]
        except KeyError:
            raise UnknownMenu(name) from None

    def route(self, name: str) -> tuple[str, ...]:
        """Shortest path from the start menu to `name` (`("main", "1:orders")`), or just `(name,)`."""
        self.menu(name)
        return self.routes.get(name, (name,))


class UnknownMenu(KeyError):
    """Raised when asked for a menu that the configuration does not define."""


def menu_targets(action: Action) -> list[str]:
    """Menus an action can lead to (following `collect ... then`)."""
    if isinstance(action, MenuAction):
        return [action.menu]
    if isinstance(action, CollectAction):
        return menu_targets(action.then)
    return []


def walk_actions(menu: Menu) -> Iterator[Action]:
    """Every action of a menu: options, their `then` chains and `on_max_retries`."""
    for _key, action in sorted(menu.options.items()):
        yield action
        while isinstance(action, CollectAction):
            action = action.then
            yield action
    yield menu.on_max_retries


def compute_routes(start: str, menus: dict[str, Menu]) -> dict[str, tuple[str, ...]]:
    """Breadth-first routes from `start` to every reachable menu, as path entries."""
    if start not in menus:
        return {}
    routes: dict[str, tuple[str, ...]] = {start: (start,)}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        for key, action in sorted(menus[name].options.items()):
            for target in menu_targets(action):
                if target in menus and target not in routes:
                    routes[target] = (*routes[name], f"{key}:{target}")
                    queue.append(target)
    return routes

"""Checks across a loaded IVR: menu references, reachability and the domain's names."""

from __future__ import annotations

from bot.ivr.config import (
    CollectAction,
    IntentAction,
    IvrConfig,
    MenuAction,
    ResponseAction,
    menu_targets,
    walk_actions,
)
from bot.training_data.model import Domain, Problem


def cross_check(config: IvrConfig) -> list[Problem]:
    """Problems that need the whole file: missing start, unknown and unreachable menus."""
    problems: list[Problem] = []
    if config.start and config.start not in config.menus:
        problems.append(
            Problem(config.start_location, f"start menu {config.start!r} is not defined in 'menus'")
        )
    for menu in config.menus.values():
        for action in walk_actions(menu):
            if isinstance(action, MenuAction) and action.menu not in config.menus:
                problems.append(Problem(action.location, f"unknown target menu {action.menu!r}"))
    if config.start in config.menus:
        reachable = _reachable(config)
        for name, menu in config.menus.items():
            if name not in reachable:
                problems.append(
                    Problem(
                        menu.location, f"menu {name!r} cannot be reached from {config.start!r}", "warning"
                    )
                )
    return _unique(problems)


def check_against_domain(config: IvrConfig, domain: Domain) -> list[Problem]:
    """Intents, responses (errors) and slots (warnings) the IVR uses but the domain lacks."""
    problems: list[Problem] = []
    for menu in config.menus.values():
        for action in walk_actions(menu):
            if isinstance(action, IntentAction) and action.intent not in domain.intents:
                problems.append(Problem(action.location, f"intent {action.intent!r} is not in the domain"))
            elif isinstance(action, ResponseAction) and action.response not in domain.responses:
                problems.append(
                    Problem(action.location, f"response {action.response!r} is not in the domain")
                )
            elif isinstance(action, CollectAction) and action.slot not in domain.slots:
                message = f"slot {action.slot!r} is not in the domain"
                problems.append(Problem(action.location, message, "warning"))
    return _unique(problems)


def _reachable(config: IvrConfig) -> set[str]:
    seen = {config.start}
    todo = [config.start]
    while todo:
        menu = config.menus[todo.pop()]
        for action in walk_actions(menu):
            for target in menu_targets(action):
                if target in config.menus and target not in seen:
                    seen.add(target)
                    todo.append(target)
    return seen


def _unique(problems: list[Problem]) -> list[Problem]:
    """Drop repeats (a `defaults` action is checked once per menu that inherits it)."""
    return list(dict.fromkeys(problems))

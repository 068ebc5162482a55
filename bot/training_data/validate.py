"""Cross-file consistency checks of a loaded `Project` (what `callpilot data validate` reports)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.training_data.model import Example, Location, Problem, Project, RuleStep

MIN_EXAMPLES_PER_INTENT = 5
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Intents and actions every Rasa assistant has without declaring them.
DEFAULT_INTENTS = frozenset(
    {"restart", "back", "out_of_scope", "session_start", "nlu_fallback"}
)
DEFAULT_ACTIONS = frozenset(
    {
        "action_listen", "action_restart", "action_session_start", "action_default_fallback",
        "action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
        "action_default_ask_rephrase", "action_two_stage_fallback", "action_unlikely_intent",
        "action_back", "...", "action_extract_slots",
    }
)  # fmt: skip
DEFAULT_SLOTS = frozenset({"requested_slot", "session_started_metadata"})


def check_project(
    project: Project, *, min_examples: int = MIN_EXAMPLES_PER_INTENT
) -> list[Problem]:
    """Every consistency problem of a project that loaded (errors and warnings)."""
    if not project.files:
        return [
            Problem(
                Location(project.root),
                "no Rasa training data found (no file with nlu:, rules:, stories: or domain keys)",
            )
        ]
    problems = _check_examples(project, min_examples)
    problems += _check_synonyms(project)
    has_domain = bool(
        project.domain.intents or project.domain.responses or project.domain.actions
    )
    if not has_domain:
        problems.append(
            Problem(
                Location(project.root),
                "no domain found (no file lists intents:, responses: or actions:)",
            )
        )
        return problems
    problems += _check_intents(project)
    problems += _check_translations(project)
    problems += _check_rules(project)
    problems += _check_forms_and_slots(project)
    return problems


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def _check_examples(project: Project, min_examples: int) -> list[Problem]:
    problems: list[Problem] = []
    first_seen: dict[str, Example] = {}
    counts = dict.fromkeys(project.nlu.intent_locations, 0)
    declared = set(project.domain.entities)
    other_languages: dict[str, dict[str, int]] = {}
    for example in project.nlu.examples:
        if example.language == "en":
            counts[example.intent] = counts.get(example.intent, 0) + 1
        else:
            per_intent = other_languages.setdefault(example.language, {})
            per_intent[example.intent] = per_intent.get(example.intent, 0) + 1
        key = _normalized(example.text)
        first = first_seen.setdefault(key, example)
        if first is not example and first.intent != example.intent:
            problems.append(
                Problem(
                    example.location,
                    f'example "{example.text}" is in intent {example.intent} and also in '
                    f"intent {first.intent} ({first.location})",
                )
            )
        elif first is not example:
            problems.append(
                Problem(
                    example.location,
                    f'example "{example.text}" is listed twice in intent {example.intent} '
                    f"(first at {first.location})",
                    "warning",
                )
            )
        for span in example.entities:
            if span.entity not in declared:
                problems.append(
                    Problem(
                        example.location,
                        f"entity '{span.entity}' is annotated in example \"{example.text}\" "
                        "but not declared under entities: in the domain",
                    )
                )
    elsewhere = {intent for per_intent in other_languages.values() for intent in per_intent}
    for intent, count in counts.items():
        if count < min_examples and not (count == 0 and intent in elsewhere):
            location = project.nlu.intent_locations.get(intent, Location(project.root))
            problems.append(
                Problem(
                    location,
                    f"intent '{intent}' has only {count} example(s); at least {min_examples} are needed",
                )
            )
        elif count == 0:  # an intent of another language only: English callers never get it
            problems.append(Problem(project.nlu.intent_locations.get(intent, Location(project.root)),
                                    f"intent '{intent}' has no English examples", "warning"))
    english = {intent for intent, count in counts.items() if count}
    for language, per_intent in sorted(other_languages.items()):
        for intent in sorted(english | set(per_intent)):
            count = per_intent.get(intent, 0)
            if count < min_examples:
                problems.append(Problem(
                    project.nlu.intent_locations.get(intent, Location(project.root)),
                    f"intent '{intent}' has only {count} {language} example(s); at least {min_examples} are "
                    f"needed, or {language} callers asking for it are taken for another intent",
                    "warning"))
    return problems


def _check_translations(project: Project) -> list[Problem]:
    """Every response a language folder gives exists in English with the same `{slot}` placeholders;
    a response with no translation is said in English (one warning per language)."""
    problems: list[Problem] = []
    english = project.domain.responses
    for language, responses in sorted(project.domain.translations.items()):
        for name, response in responses.items():
            if name not in english:
                problems.append(Problem(response.location, f"{language} response '{name}' has no English "
                                                           "response of that name: the bot never says it"))
                continue
            wanted = {p for v in english[name].variants for p in _PLACEHOLDER.findall(v.text)}
            for variant in response.variants:
                extra = set(_PLACEHOLDER.findall(variant.text)) - wanted - set(project.domain.slots)
                if extra:
                    problems.append(Problem(response.location, f"{language} response '{name}' uses "
                                                               f"{', '.join(sorted(extra))}, which is not a slot"))
        missing = sorted(set(english) - set(responses))
        if missing:
            shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            problems.append(Problem(Location(project.root), f"{len(missing)} response(s) have no {language} text "
                                                            f"and are said in English: {shown}", "warning"))
    return problems


def _check_synonyms(project: Project) -> list[Problem]:
    """The same variant (case-insensitive) must not map to two different values."""
    problems: list[Problem] = []
    seen: dict[str, tuple[str, Location]] = {}
    mappings = [(s.value, s.value, s.location) for s in project.nlu.synonyms]
    mappings += [
        (variant, s.value, Location(s.location.path, line))
        for s in project.nlu.synonyms
        for variant, line in zip(
            s.examples,
            s.example_lines or (s.location.line,) * len(s.examples),
            strict=True,
        )
    ]
    mappings += [
        (e.text[span.start : span.end], span.value, e.location)
        for e in project.nlu.examples
        for span in e.entities
        if e.text[span.start : span.end] != span.value
    ]
    for variant, value, location in sorted(
        mappings, key=lambda m: (m[2].path, m[2].line)
    ):
        previous = seen.setdefault(variant.lower(), (value, location))
        if previous[0] != value:
            problems.append(
                Problem(
                    location,
                    f"synonym '{variant}' maps to '{value}' here but to '{previous[0]}' in {previous[1]}",
                )
            )
    return problems


def _base_intent(intent: str) -> str:
    """Retrieval intents `faq/ask_hours` are declared in the domain as `faq`."""
    return intent.split("/", 1)[0]


def _check_intents(project: Project) -> list[Problem]:
    problems: list[Problem] = []
    domain = project.domain
    nlu_intents = {_base_intent(i) for i in project.nlu.intents}
    for intent, location in project.nlu.intent_locations.items():
        if _base_intent(intent) not in domain.intents:
            problems.append(
                Problem(
                    location,
                    f"intent '{intent}' has NLU examples but is not listed under intents: in the domain",
                )
            )
        if "/" in intent and f"utter_{intent}" not in domain.responses:
            problems.append(
                Problem(
                    location,
                    f"retrieval intent '{intent}' has no response 'utter_{intent}' in the domain",
                )
            )
    for intent in domain.intents:
        if intent not in nlu_intents and intent not in DEFAULT_INTENTS:
            location = domain.intent_locations.get(intent, Location(project.root))
            problems.append(
                Problem(
                    location,
                    f"intent '{intent}' is listed in the domain but has no NLU examples",
                    "warning",
                )
            )
    for action in domain.actions:
        if action.startswith("utter_") and action not in domain.responses:
            problems.append(
                Problem(
                    Location(project.root),
                    f"action '{action}' is listed under actions: but has no response",
                    "warning",
                )
            )
    return problems


def _steps(steps: tuple[RuleStep, ...]) -> Iterator[RuleStep]:
    for step in steps:
        yield step
        yield from _steps(step.alternatives)


def _has_response(action: str, project: Project) -> bool:
    """`utter_faq` is the action of retrieval responses `utter_faq/<sub-intent>`."""
    responses = project.domain.responses
    return action in responses or any(
        name.startswith(f"{action}/") for name in responses
    )


def _check_rules(project: Project) -> list[Problem]:
    problems: list[Problem] = []
    domain = project.domain
    known_actions = set(domain.actions) | set(domain.forms) | DEFAULT_ACTIONS
    for rule in project.rules:
        where = f"{'story' if rule.is_story else 'rule'} '{rule.name}'"
        for step in _steps(rule.condition + rule.steps):

            def error(message: str, step: RuleStep = step) -> None:
                problems.append(Problem(step.location, message))

            if step.intent and _base_intent(step.intent) not in {
                *domain.intents,
                *DEFAULT_INTENTS,
            }:
                error(
                    f"intent '{step.intent}' used in {where} is not listed under intents: in the domain"
                )
            for entity, _ in step.entities:
                if entity not in domain.entities:
                    error(
                        f"entity '{entity}' used in {where} is not declared under entities: in the domain"
                    )
            if step.action and step.action.startswith("utter_"):
                if (
                    not _has_response(step.action, project)
                    and step.action not in domain.actions
                ):
                    error(
                        f"response '{step.action}' used in {where} is missing from the domain (add it under responses:)"
                    )
            elif step.action and step.action not in known_actions:
                error(
                    f"action '{step.action}' used in {where} is not declared in the domain (add it under actions:)"
                )
            if (
                step.active_loop
                and step.active_loop != "null"
                and step.active_loop not in known_actions
            ):
                error(
                    f"active_loop '{step.active_loop}' in {where} is not a form or action of the domain"
                )
            for slot, _ in step.slot_was_set:
                if slot not in domain.slots and slot not in DEFAULT_SLOTS:
                    error(
                        f"slot '{slot}' set in {where} is not declared under slots: in the domain"
                    )
    return problems


def _check_forms_and_slots(project: Project) -> list[Problem]:
    problems: list[Problem] = []
    domain = project.domain
    for form in domain.forms.values():
        for slot in form.required_slots:
            if slot not in domain.slots:
                problems.append(
                    Problem(
                        form.location,
                        f"form '{form.name}' requires slot '{slot}' which is not declared under slots:",
                    )
                )
                continue
            askers = (
                f"utter_ask_{form.name}_{slot}",
                f"utter_ask_{slot}",
                f"action_ask_{form.name}_{slot}",
                f"action_ask_{slot}",
            )
            if not any(
                name in domain.responses or name in domain.actions for name in askers
            ):
                problems.append(
                    Problem(
                        form.location,
                        f"form '{form.name}' cannot ask for slot '{slot}': response 'utter_ask_{slot}' "
                        f"(or '{askers[0]}') is missing from the domain",
                    )
                )
    for slot_def in domain.slots.values():
        for mapping in slot_def.mappings:
            if mapping.entity and mapping.entity not in domain.entities:
                problems.append(
                    Problem(
                        slot_def.location,
                        f"slot '{slot_def.name}' is filled from entity '{mapping.entity}' "
                        "which is not declared under entities:",
                    )
                )
            for intent in mapping.intent + mapping.not_intent:
                if intent not in domain.intents:
                    problems.append(
                        Problem(
                            slot_def.location,
                            f"slot '{slot_def.name}' mapping names intent '{intent}' which is not in the domain",
                            "warning",
                        )
                    )
            if (
                mapping.active_loop
                and mapping.active_loop != "null"
                and mapping.active_loop not in domain.forms
            ):
                problems.append(
                    Problem(
                        slot_def.location,
                        f"slot '{slot_def.name}' mapping is conditioned on unknown form '{mapping.active_loop}'",
                        "warning",
                    )
                )
    return problems


def format_problems(problems: list[Problem]) -> str:
    """Problems as `file:line: severity: message` lines, sorted, with a summary line."""
    if not problems:
        return "no problems found"
    ordered = sorted(
        problems,
        key=lambda p: (p.location.path, p.location.line, p.severity, p.message),
    )
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return "\n".join([*map(str, ordered), summary])

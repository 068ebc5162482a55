"""Texts of a data directory -> one `Project` (classify files, check versions, merge). No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from bot.training_data.domain import DOMAIN_KEYS, merge_domains, parse_domain
from bot.training_data.model import (
    DataError,
    Domain,
    Location,
    NLUData,
    Problem,
    Project,
    Response,
    Rule,
)
from bot.training_data.nlu import parse_nlu
from bot.training_data.rules import parse_rules
from bot.training_data.validate import MIN_EXAMPLES_PER_INTENT, check_project
from bot.training_data.yaml_lines import YNode, parse_yaml

DATA_KEYS = frozenset({"nlu", "rules", "stories"})
SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1")
TEST_FILE_PREFIX = "test_"
# Folders of data in another language than the base (English) one: `nlu_data/zh/`.
LANGUAGE_FOLDERS = ("zh",)  # Rasa reads `test_*.yml` as test stories, not training data


@dataclass
class ParsedFile:
    """What one YAML file contributed; `is_data` is False for non-Rasa files."""

    path: str
    is_data: bool = False
    yaml_ok: bool = True
    nlu: NLUData = field(default_factory=NLUData)
    domain: Domain | None = None
    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_file(text: str, path: str) -> ParsedFile:
    """Parse one file's text; a file without Rasa top-level keys is marked as not data."""
    parsed = ParsedFile(path)
    root, yaml_problems = parse_yaml(text, path)
    parsed.problems.extend(yaml_problems)
    if root is None:
        parsed.yaml_ok = not yaml_problems
        parsed.is_data = bool(
            yaml_problems
        )  # a broken file may well be data: report it
        return parsed
    keys = root.key_names() if root.is_map else []
    if not any(key in DATA_KEYS or key in DOMAIN_KEYS for key in keys):
        return parsed
    parsed.is_data = True
    _check_version(root.get("version"), root.line, path, parsed.problems)
    for key in keys:
        if key not in DATA_KEYS and key not in DOMAIN_KEYS and key != "version":
            parsed.problems.append(
                Problem(
                    Location(path, root.key_line(key)),
                    f"unknown top-level key '{key}' is ignored",
                    "warning",
                )
            )
    for key in keys:
        node = root.get(key)
        assert node is not None
        if key == "nlu":
            parsed.nlu, problems = parse_nlu(node, path)
        elif key in ("rules", "stories"):
            rules, problems = parse_rules(node, path, stories=key == "stories")
            parsed.rules.extend(rules)
        else:
            continue
        parsed.problems.extend(problems)
    if any(key in DOMAIN_KEYS for key in keys):
        parsed.domain, problems = parse_domain(root, path)
        parsed.problems.extend(problems)
    return parsed


def _check_version(
    node: YNode | None, root_line: int, path: str, problems: list[Problem]
) -> None:
    if node is None:
        problems.append(
            Problem(
                Location(path, root_line),
                f"no 'version' key; add version: \"{SUPPORTED_VERSIONS[-1]}\"",
                "warning",
            )
        )
        return
    version = node.text()
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
        problems.append(
            Problem(
                Location(path, node.line),
                f"unsupported version '{version}' (supported: {supported})",
            )
        )
    elif not node.is_str:
        problems.append(
            Problem(
                Location(path, node.line),
                f'write the version as a string: version: "{version}"',
                "warning",
            )
        )


def is_test_file(path: str) -> bool:
    """Rasa's convention: files named `test_*` hold test stories, not training data."""
    return PurePosixPath(path).name.startswith(TEST_FILE_PREFIX)


def language_of(path: str, root: str) -> str:
    """`<root>/zh/...` holds Chinese data; every other file is English (the base language)."""
    pure, base = PurePosixPath(path), PurePosixPath(root)
    parts = pure.relative_to(base).parts if pure.is_relative_to(base) else pure.parts
    return parts[0] if len(parts) > 1 and parts[0] in LANGUAGE_FOLDERS else "en"


def build_project(
    files: Iterable[tuple[str, str]], root: str
) -> tuple[Project, list[Problem], bool]:
    """Parse and merge (path, text) pairs; return the project, all problems, and YAML health."""
    project = Project(root=root, nlu=NLUData(), domain=Domain(), rules=[], files=[])
    problems: list[Problem] = []
    domains: list[Domain] = []
    translations: dict[str, dict[str, Response]] = {}
    yaml_ok = True
    for path, text in sorted(files):
        parsed = parse_file(text, path) if not is_test_file(path) else ParsedFile(path)
        problems.extend(parsed.problems)
        yaml_ok = yaml_ok and parsed.yaml_ok
        if not parsed.is_data:
            project.skipped_files.append(path)
            continue
        project.files.append(path)
        language = language_of(path, root)
        if language != "en":
            parsed.nlu.examples = [replace(e, language=language) for e in parsed.nlu.examples]
            parsed.nlu.regexes = [replace(r, language=language) for r in parsed.nlu.regexes]
            parsed.nlu.lookups = [replace(t, language=language) for t in parsed.nlu.lookups]
            problems.extend(_translation(parsed, language, translations.setdefault(language, {})))
        _merge_nlu(project.nlu, parsed.nlu)
        project.rules.extend(parsed.rules)
        if parsed.domain is not None and language == "en":
            domains.append(parsed.domain)
    project.domain, merge_problems = merge_domains(domains)
    project.domain.translations = translations
    problems.extend(merge_problems)
    return project, problems, yaml_ok


def _translation(parsed: ParsedFile, language: str, into: dict[str, Response]) -> list[Problem]:
    """A language folder's domain file gives responses in that language, nothing else."""
    problems: list[Problem] = []
    if parsed.rules:
        problems.append(Problem(Location(parsed.path), f"rules and stories serve every language: move them "
                                                       f"out of the '{language}' folder"))
    domain = parsed.domain
    if domain is None:
        return problems
    if domain.intents or domain.slots or domain.forms or domain.actions or domain.entities:
        problems.append(Problem(Location(parsed.path), f"a '{language}' file holds only responses (translations): "
                                                       "intents, entities, slots, forms and actions go in the domain"))
    for name, response in domain.responses.items():
        if name in into:
            problems.append(Problem(response.location, f"response '{name}' in {language} is defined twice "
                                                       f"(first at {into[name].location})"))
        else:
            into[name] = response
    return problems


def _merge_nlu(into: NLUData, part: NLUData) -> None:
    into.examples.extend(part.examples)
    into.synonyms.extend(part.synonyms)
    into.regexes.extend(part.regexes)
    into.lookups.extend(part.lookups)
    for intent, location in part.intent_locations.items():
        into.intent_locations.setdefault(intent, location)


def raise_on_errors(problems: list[Problem]) -> list[Problem]:
    """Raise `DataError` if any problem is an error; otherwise return the warnings."""
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DataError(errors)
    return problems


def load_nlu_text(text: str, path: str) -> NLUData:
    """Parse one file's NLU data from a string; raise `DataError` on errors."""
    parsed = parse_file(text, path)
    raise_on_errors(parsed.problems)
    return parsed.nlu


def load_domain_text(text: str, path: str) -> Domain:
    """Parse one domain file from a string; raise `DataError` on errors."""
    parsed = parse_file(text, path)
    raise_on_errors(parsed.problems)
    return parsed.domain or Domain()


def load_rules_text(text: str, path: str) -> list[Rule]:
    """Parse the rules and stories of one file from a string; raise `DataError` on errors."""
    parsed = parse_file(text, path)
    raise_on_errors(parsed.problems)
    return parsed.rules


def load_texts(
    files: Iterable[tuple[str, str]], root: str = ".", *, strict: bool = False
) -> Project:
    """Load (path, text) pairs as one project; raise `DataError` with every error found.

    Load errors make data unreadable or ambiguous (YAML, types, version, markup, regexes,
    empty lookups). With `strict=True` the consistency checks of `validate_texts` must pass
    too, and their warnings join `project.warnings`.
    """
    project, problems, _ = build_project(files, root)
    if not project.files:
        problems.append(Problem(Location(root), "no Rasa training data found"))
    if strict and not any(p.severity == "error" for p in problems):
        problems += check_project(project)
    project.warnings = raise_on_errors(problems)
    return project


def validate_texts(
    files: Iterable[tuple[str, str]],
    root: str = ".",
    *,
    min_examples: int = MIN_EXAMPLES_PER_INTENT,
) -> list[Problem]:
    """Every error and warning for (path, text) pairs: load problems plus consistency checks."""
    project, problems, yaml_ok = build_project(files, root)
    if yaml_ok:  # a file that did not parse would make every cross-check noisy
        problems += check_project(project, min_examples=min_examples)
    return problems

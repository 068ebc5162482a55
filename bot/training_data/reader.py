"""The only layer that touches disk: find and read a data directory's YAML files."""

from __future__ import annotations

from pathlib import Path

from bot.training_data.model import DataError, Location, Problem, Project
from bot.training_data.project import load_texts, validate_texts
from bot.training_data.validate import MIN_EXAMPLES_PER_INTENT

YAML_SUFFIXES = (".yml", ".yaml")


def find_yaml_files(root: Path) -> list[Path]:
    """Every `*.yml`/`*.yaml` below root, sorted, skipping hidden folders and files."""
    found = [
        path
        for path in root.rglob("*")
        if path.suffix in YAML_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_texts(root: Path) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(path, text) for every YAML file below root (paths as root was given), and read problems."""
    if not root.is_dir():
        return [], [Problem(Location(root.as_posix()), "data directory not found")]
    texts: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for path in find_yaml_files(root):
        name = path.as_posix()
        try:
            texts.append((name, path.read_text(encoding="utf-8-sig")))
        except UnicodeDecodeError as err:
            problems.append(
                Problem(Location(name), f"file is not UTF-8 text (byte {err.start})")
            )
        except OSError as err:
            problems.append(
                Problem(Location(name), f"cannot read file: {err.strerror}")
            )
    return texts, problems


def load_project(root: Path, *, strict: bool = False) -> Project:
    """Load every Rasa data file below root; raise `DataError` with all errors found.

    Files without Rasa top-level keys (config.yml, ivr.yml) are skipped; see `load_texts`
    for what counts as a load error and what `strict` adds.
    """
    texts, problems = read_texts(root)
    if problems:
        raise DataError([p for p in problems if p.severity == "error"])
    return load_texts(texts, root.as_posix(), strict=strict)


def validate_project(
    root: Path, *, min_examples: int = MIN_EXAMPLES_PER_INTENT
) -> list[Problem]:
    """Every error and warning for a data directory (load problems plus consistency checks)."""
    texts, problems = read_texts(root)
    if not root.is_dir():
        return problems
    return problems + validate_texts(texts, root.as_posix(), min_examples=min_examples)

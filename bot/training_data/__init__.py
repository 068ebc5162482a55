"""Trainer-edited Rasa 3.x YAML -> typed training data, with `file:line` problems.

Layers: path -> text (`reader`, the only I/O) -> YAML nodes with lines (`yaml_lines`)
-> typed objects (`nlu`, `domain`, `rules`, `markup`) -> one project (`project`)
-> consistency checks (`validate`).
"""

from bot.training_data.fingerprint import fingerprint
from bot.training_data.markup import MarkupError, parse_markup
from bot.training_data.model import DataError, EntitySpan, Location, Problem, Project
from bot.training_data.project import (
    load_domain_text,
    load_nlu_text,
    load_rules_text,
    load_texts,
    validate_texts,
)
from bot.training_data.reader import load_project, validate_project
from bot.training_data.validate import check_project, format_problems

__all__ = [
    "DataError",
    "EntitySpan",
    "Location",
    "MarkupError",
    "Problem",
    "Project",
    "check_project",
    "fingerprint",
    "format_problems",
    "load_domain_text",
    "load_nlu_text",
    "load_project",
    "load_rules_text",
    "load_texts",
    "parse_markup",
    "validate_project",
    "validate_texts",
]

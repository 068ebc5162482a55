"""Classic DTMF IVR menus: a YAML loader and a sans-I/O, table-driven menu engine."""

from bot.ivr.config import IvrConfig, Menu, UnknownMenu
from bot.ivr.engine import IvrEngine, StateMismatch
from bot.ivr.loader import load_ivr, load_ivr_text
from bot.ivr.outcomes import (
    BackToSpeech,
    GoIntent,
    Handoff,
    HangUp,
    IvrResult,
    Outcome,
    SayResponse,
)
from bot.ivr.state import IvrState
from bot.ivr.transitions import IllegalIvrTransition, Mode
from bot.ivr.validate import check_against_domain

__all__ = [
    "BackToSpeech",
    "GoIntent",
    "Handoff",
    "HangUp",
    "IllegalIvrTransition",
    "IvrConfig",
    "IvrEngine",
    "IvrResult",
    "IvrState",
    "Menu",
    "Mode",
    "Outcome",
    "SayResponse",
    "StateMismatch",
    "UnknownMenu",
    "check_against_domain",
    "load_ivr",
    "load_ivr_text",
]

"""Secrets never reach the logs: credentials in URLs and secret query values (`?token=`) are masked in every
record of our loggers and uvicorn's, the access log included (`GET /agent/ws?token=***`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.urls import mask_urls_in

LOGGER_PREFIXES = ("callpilot", "voice_gateway", "bot", "handoff", "uvicorn", "httpx", "alembic", "sqlalchemy")


class SecretMaskingFilter(logging.Filter):
    """Masks URL passwords and secret query values in string arguments (uvicorn's access formatter reads
    `record.args`) and in the message itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = mask_urls_in(record.msg)
        return True


def _masked(value: object) -> object:
    """Strings and objects that print as a URL (httpx logs an `httpx.URL`) come back masked; numbers stay
    numbers, so `%d` still formats them."""
    if value is None or isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    masked = mask_urls_in(text)
    return masked if masked != text or isinstance(value, str) else value


def install_secret_masking(prefixes: Iterable[str] = LOGGER_PREFIXES) -> SecretMaskingFilter:
    """One SecretMaskingFilter on our loggers, their existing children and the root's handlers (a logger's
    filters see only records logged to that very logger; the root handlers catch children created later)."""
    wanted = tuple(prefixes)
    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in wanted] + list(wanted)
    existing = next((f for f in logging.getLogger(wanted[0]).filters if isinstance(f, SecretMaskingFilter)), None)
    masking = existing or SecretMaskingFilter()
    for name in names:
        logger = logging.getLogger(name)
        if masking not in logger.filters:
            logger.addFilter(masking)
    for handler in logging.getLogger().handlers:
        if masking not in handler.filters:
            handler.addFilter(masking)
    return masking

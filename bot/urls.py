"""`mask_url`: a URL fit to print or return, with its password and secret query values replaced by `***`.

Every URL callpilot logs, shows in `/health` or puts in an error message (Redis, the database, the CRM, Rasa,
webhooks, remote action servers) goes through it: `redis://:s3cret@10.0.0.5:6379/0` -> `redis://:***@10.0.0.5:6379/0`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose values are credentials (`?token=...` from Rasa, `?password=` in database URLs ...).
SECRET_PARAMS = frozenset({"token", "access_token", "api_key", "apikey", "key", "secret", "password", "passwd",
                           "pass", "pwd", "sig", "signature", "auth", "authorization", "client_secret"})
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{}]+")
_USERINFO = re.compile(r"(//[^/@\s:]*):[^/@\s]*@")
_SECRET_QUERY = re.compile(r"([?&](?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)(?!\*\*\*)[^&#\s\"']*",
                           re.IGNORECASE)


def mask_url(url: str | None) -> str:
    """The URL with a password and secret query values masked; anything unparseable masked by pattern."""
    if url is None:
        return "none"
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user = quote(parts.username or "", safe="")
            host = netloc.rpartition("@")[2]
            netloc = f"{user}:{MASK}@{host}"
        query = _SECRET_QUERY.sub(rf"\g<1>{MASK}", "?" + parts.query)[1:] if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return _SECRET_QUERY.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>:{MASK}@", url))


def mask_urls_in(text: str) -> str:
    """Every URL inside `text` (an exception message, a log line) masked; also bare `?token=` query strings."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(_mask_match, text)
    if "=" in text:
        text = _SECRET_QUERY.sub(rf"\g<1>{MASK}", text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    url = match.group()
    stripped = url.rstrip(".,:;!?")  # "... at redis://host:1/0: refused": the colon ends the sentence
    return mask_url(stripped) + url[len(stripped):]

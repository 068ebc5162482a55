"""TwiML for `POST /twilio/voice`: connect the call to our Media Streams websocket (bidirectional)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

MEDIA_STREAM_PATH = "/media/twilio"
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot carry


def _attr(value: str) -> str:
    """A double-quoted, escaped XML attribute value."""
    return '"' + escape(_NOT_XML.sub("", value), {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}) + '"'


def media_stream_url(public_url: str, path: str = MEDIA_STREAM_PATH) -> str:
    """The websocket URL Twilio should stream to, from our public http(s) base URL (https -> wss)."""
    parts = urlsplit(public_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"expected an http(s) or ws(s) URL with a host, got {public_url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def voice_twiml(stream_url: str, caller: str = "", called: str = "", extra: Mapping[str, str] | None = None) -> str:
    """`<Response><Connect><Stream url=...>` passing caller, called and `extra` as custom parameters."""
    if urlsplit(stream_url).scheme not in ("ws", "wss"):
        raise ValueError(f"a Media Streams URL must be ws:// or wss://, got {stream_url!r}")
    parameters = {"caller": caller, "called": called, **(extra or {})}
    lines = "".join(
        f"<Parameter name={_attr(name)} value={_attr(value)}/>" for name, value in parameters.items() if value
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={_attr(stream_url)}>{lines}</Stream></Connect></Response>"
    )


def voice_twiml_for_form(form: Mapping[str, str], stream_url: str, extra: Mapping[str, str] | None = None) -> str:
    """The TwiML answering Twilio's voice webhook form (From, To, CallSid), plus `extra` parameters (the
    stream's token)."""
    return voice_twiml(stream_url, form.get("From", ""), form.get("To", ""),
                       {"callSid": form.get("CallSid", ""), **(extra or {})})

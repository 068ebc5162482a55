"""Runs the README's Asterisk dialplan for one call: the few dialplan functions it uses, with the semantics
Asterisk documents (FILTER, SHA1, IF with a $[...] comparison, CALLERID(num), ${UNIQUEID}, ${VAR:offset:length}),
so a test caller sends the UUID a real Asterisk would."""

from __future__ import annotations

import hashlib
import re


def _closing(text: str, start: int, opening: str, closing: str) -> int:
    """The index of the bracket closing the one at `start`."""
    depth = 0
    for index in range(start, len(text)):
        depth += text[index] == opening
        depth -= text[index] == closing
        if depth == 0:
            return index
    raise ValueError(f"unbalanced {opening}{closing} in {text!r}")


class Channel:
    """One call's channel variables and the functions the dialplan reads."""

    def __init__(self, callerid_num: str, unique_id: str) -> None:
        self.variables = {"UNIQUEID": unique_id}
        self.callerid_num = callerid_num

    def expand(self, text: str) -> str:
        """Substitute every ${...} and $[...] (innermost first, as Asterisk does)."""
        out, index = [], 0
        while index < len(text):
            if text.startswith("${", index):
                end = _closing(text, index + 1, "{", "}")
                out.append(self._value(self.expand(text[index + 2 : end])))
                index = end + 1
            elif text.startswith("$[", index):
                end = _closing(text, index + 1, "[", "]")
                left, right = (part.strip().strip('"') for part in self.expand(text[index + 2 : end]).split(" = "))
                out.append("1" if left == right else "0")
                index = end + 1
            else:
                out.append(text[index])
                index += 1
        return "".join(out)

    def _value(self, expression: str) -> str:
        if "(" in expression and re.match(r"^[A-Z0-9_]+\(", expression):
            close = _closing(expression, expression.index("("), "(", ")")
            name, argument = expression[: expression.index("(")], expression[expression.index("(") + 1 : close]
            value, rest = self._function(name, argument), expression[close + 1 :]
        else:
            name, _, rest = expression.partition(":")
            value, rest = self.variables.get(name, ""), ":" + rest if rest else ""
        if rest:  # ${VAR:offset} or ${VAR:offset:length}; a negative offset counts from the end
            parts = [int(p) for p in rest[1:].split(":")]
            start = parts[0] if parts[0] >= 0 else max(len(value) + parts[0], 0)
            value = value[start : start + parts[1]] if len(parts) > 1 else value[start:]
        return value

    def _function(self, name: str, argument: str) -> str:
        if name == "CALLERID" and argument == "num":
            return self.callerid_num
        if name == "SHA1":
            return hashlib.sha1(argument.encode()).hexdigest()
        if name == "FILTER":
            allowed, _, text = argument.partition(",")
            low, _, high = allowed.partition("-")
            return "".join(c for c in text if low <= c <= high) if high else "".join(c for c in text if c in allowed)
        if name == "IF":
            condition, _, choices = argument.partition("?")
            when_true, _, when_false = choices.partition(":")
            return when_true if condition.strip() not in ("", "0") else when_false
        raise ValueError(f"the test dialplan does not know {name}()")


def audiosocket_uuid(dialplan: str, callerid_num: str, unique_id: str = "1733212345.42") -> str:
    """Run `exten`/`same` lines until AudioSocket(uuid,service) and return the UUID it would send."""
    channel = Channel(callerid_num, unique_id)
    for line in dialplan.splitlines():
        application = line.split(",", 1)[1] if line.strip().startswith(("exten", "same")) else ""
        if application.startswith("Set("):
            name, _, value = application[4:-1].partition("=")
            channel.variables[name] = channel.expand(value)
        elif application.startswith("AudioSocket("):
            return channel.expand(application[len("AudioSocket(") : -1]).rsplit(",", 1)[0]
    raise ValueError("the dialplan never reaches AudioSocket()")

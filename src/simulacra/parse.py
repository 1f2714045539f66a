"""Find the JSON in a model's reply: tolerant of code fences, prose around it and single quotes.

    parse_reply('Sure! ```json\\n{"a": 1}\\n``` Anything else?')   -> {"a": 1}
    parse_reply("{'a': 'x', 'ok': True}")                           -> {"a": "x", "ok": True}

When nothing parses, ReplyParseError says what was wrong and where.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class ReplyParseError(ValueError):
    """The reply holds no parseable JSON value; the message says why and where."""


def parse_reply(text: str, *, expect: type = dict) -> Any:
    """The first JSON object (or list, with `expect=list`) in `text`."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    opener = "{" if expect is dict else "["
    start = body.find(opener)
    if start < 0:
        other = "[" if expect is dict else "{"
        if expect is list and body.find(other) >= 0:  # one object where a list was asked
            return [parse_reply(body, expect=dict)]
        raise ReplyParseError(f"no JSON {'object' if expect is dict else 'list'} in the reply "
                              f"(starts {text.strip()[:40]!r})")
    candidate = body[start:]
    try:
        value, _ = json.JSONDecoder().raw_decode(candidate)
        return value
    except json.JSONDecodeError as exc:
        first_error = exc
    end = candidate.rfind("}" if expect is dict else "]")
    if end > 0:
        try:  # Python-style literals: single quotes, True/False/None
            value = ast.literal_eval(candidate[:end + 1])
            if isinstance(value, expect):
                return value
        except (ValueError, SyntaxError):
            pass
    raise ReplyParseError(
        f"invalid JSON: {first_error.msg} at line {first_error.lineno} column {first_error.colno}"
        f" near {candidate[max(0, first_error.pos - 15):first_error.pos + 15]!r}"
    )


def parse_value(text: str) -> Any:
    """The JSON value (of any type) that `text` starts with, spaces aside."""
    body = text.strip()
    try:
        value, _ = json.JSONDecoder().raw_decode(body)
        return value
    except json.JSONDecodeError as exc:
        raise ReplyParseError(f"invalid JSON: {exc.msg} at column {exc.colno} "
                              f"near {body[max(0, exc.pos - 15):exc.pos + 15]!r}") from None

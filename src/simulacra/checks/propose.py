"""Rules a data set's own examples keep, proposed so a user does not have to write them.

    propose_rules(schema, examples)  # ["insurance_claim_amount <= total_charge", "total_charge >= 0"]

`--rule auto` applies them; `simulacra check SCHEMA --examples FILE` lists them. Two kinds:

- an ordering between two numeric fields of the same type and scale that every example keeps
  (a claim never above its charge). Fields of different scales (an id beside an amount) are
  not compared: that they are ordered in every example says nothing;
- a sign: a number every example has non-negative, where the schema allows negatives.

Without examples (or with fewer than MIN_EXAMPLES), only orderings that the field names state
are proposed: `salary_min`/`salary_max`, `start_date`/`end_date`, `price_from`/`price_to`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from simulacra.schema import Schema

MIN_EXAMPLES = 2
MAX_RATIO = 20.0   # fields whose values differ more than this in every example: other scales
_ID_LIKE = re.compile(r"(^|_)(id|code|number|no|num|zip|phone|year)$|Id$", re.IGNORECASE)
# (lower word, upper word) pairs that name an ordering when the rest of the names agree
_ORDERED_WORDS = [("min", "max"), ("minimum", "maximum"), ("start", "end"), ("begin", "end"),
                  ("from", "to"), ("low", "high"), ("lower", "upper"), ("first", "last"),
                  ("earliest", "latest"), ("opened", "closed"), ("check_in", "check_out")]


def propose_rules(schema: Schema, examples: list[dict[str, Any]]) -> list[str]:
    """Rule texts (checks/rules.py syntax) every example satisfies; see the module doc."""
    properties = schema.json_schema.get("properties", {}) if schema.is_object else {}
    numeric = {name: _type(schema, sub) for name, sub in properties.items()
               if _type(schema, sub) in ("integer", "number") and not _ID_LIKE.search(name)}
    comparable = {name: _kind(schema, sub) for name, sub in properties.items()}
    rules = _named_orderings({k: v for k, v in comparable.items() if v})
    if len(examples) >= MIN_EXAMPLES:
        rules += _example_orderings(numeric, examples)
        rules += _example_signs(schema, numeric, examples)
    return list(dict.fromkeys(rules))


def _kind(schema: Schema, sub: Any) -> str | None:
    """"number" or "date" (ISO text, which orders as it reads) for fields an ordering can
    compare; None for the rest."""
    kind = _type(schema, sub)
    if kind in ("integer", "number"):
        return "number"
    resolved = schema.resolve(sub) if isinstance(sub, dict) else {}
    formats = {p.get("format") for p in [resolved, *resolved.get("anyOf", [])] if isinstance(p, dict)}
    return "date" if formats & {"date", "date-time"} else None


def _type(schema: Schema, sub: Any) -> str | None:
    sub = schema.resolve(sub) if isinstance(sub, dict) else {}
    for part in [sub, *sub.get("anyOf", [])]:
        if isinstance(part, dict) and part.get("type") in ("integer", "number", "string"):
            return part["type"]
    return None


def _values(examples: list[dict[str, Any]], a: str, b: str) -> list[tuple[float, float]] | None:
    pairs = []
    for example in examples:
        x, y = example.get(a), example.get(b)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            return None
        pairs.append((float(x), float(y)))
    return pairs


def _example_orderings(numeric: dict[str, str], examples: list[dict[str, Any]]) -> list[str]:
    rules = []
    for a, b in itertools.combinations(numeric, 2):
        if numeric[a] != numeric[b]:
            continue
        pairs = _values(examples, a, b)
        if not pairs or not all(x > 0 and y > 0 for x, y in pairs):
            continue
        if any(max(x, y) / min(x, y) > MAX_RATIO for x, y in pairs):
            continue
        if all(x <= y for x, y in pairs) and any(x < y for x, y in pairs):
            rules.append(f"{a} <= {b}")
        elif all(y <= x for x, y in pairs) and any(y < x for x, y in pairs):
            rules.append(f"{b} <= {a}")
    return rules


def _example_signs(schema: Schema, numeric: dict[str, str], examples: list[dict[str, Any]]
                   ) -> list[str]:
    rules = []
    for name in numeric:
        values = [e.get(name) for e in examples]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            continue
        sub = schema.resolve(schema.json_schema["properties"][name])
        floor = sub.get("minimum", sub.get("exclusiveMinimum"))
        if min(values) >= 0 and (floor is None or floor < 0):
            rules.append(f"{name} >= 0")
    return rules


def _named_orderings(kinds: dict[str, str]) -> list[str]:
    """`a <= b` for field pairs of one kind whose names differ only by an ordered word pair."""
    rules = []
    lowered = {name.lower(): name for name in kinds}
    for name in kinds:
        for low, high in _ORDERED_WORDS:
            for other in _swapped(name.lower(), low, high):
                if other in lowered and kinds[lowered[other]] == kinds[name]:
                    rules.append(f"{name} <= {lowered[other]}")
    return rules


def _swapped(name: str, low: str, high: str) -> list[str]:
    """The names `name` would have with its `low` word (a whole _-separated word) as `high`."""
    parts = name.split("_")
    joined = [i for i, p in enumerate(parts) if p == low]
    if "_" in low:   # a two-word pair such as check_in
        return [name.replace(low, high)] if re.search(rf"(^|_){low}($|_)", name) else []
    return ["_".join(parts[:i] + [high] + parts[i + 1:]) for i in joined]

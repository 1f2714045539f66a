"""How many tokens a record of a (bounded) decoding schema takes: at least, and at most.

The engine sizes each reply's token budget from these: the longest complete instance is the
hard limit (a reply that reaches it was looping), and a few times the shortest one, or the
examples' length, is where the decoder starts steering the record to close. Counts follow
Gemma's tokenizer roughly: a token per digit, about 3.5 characters per token otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from simulacra.schema.model import ref_target

MAX_DEPTH = 12
NUMBER_TOKENS = 22   # 12 integer + 4 fraction digits, sign, point, exponent
ANY_TOKENS = 24      # an unconstrained value: what the model usually writes there
_SHAPE_KEYS = {"type", "properties", "items", "prefixItems", "allOf", "additionalProperties",
               "patternProperties", "required"}


def longest_tokens(schema: Any) -> int:
    """The most tokens a complete instance can take (recursion counted to MAX_DEPTH)."""
    return _longest(schema, schema, 0)


def shortest_tokens(schema: Any) -> int:
    """The fewest tokens a complete instance can take: required parts only, shortest branch."""
    return _shortest(schema, schema, 0)


def _key_tokens(name: str) -> int:
    return 3 + len(name) // 3   # quotes, colon, separator and the name


def _longest(node: Any, root: Any, depth: int) -> int:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return ANY_TOKENS if node is not False else 0
    if isinstance(node.get("$ref"), str):
        return _longest({**ref_target(root, node["$ref"]),
                         **{k: v for k, v in node.items() if k != "$ref"}}, root, depth + 1)
    if "const" in node or "enum" in node:
        values = node["enum"] if isinstance(node.get("enum"), list) else [node.get("const")]
        return 2 + max((len(json.dumps(v)) for v in values), default=4)
    options = [o for key in ("anyOf", "oneOf") for o in node.get(key) or []]
    if options:   # the node's own keywords apply too: count both, an upper bound
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        own = _longest(rest, root, depth + 1) if _SHAPE_KEYS & rest.keys() else 0
        return own + max(_longest(o, root, depth + 1) for o in options)
    if node.get("allOf"):
        merged = dict(node)
        for member in merged.pop("allOf"):
            if isinstance(member, dict):
                member = _resolved(member, root)
                for key, value in member.items():
                    if key == "properties" and isinstance(value, dict):
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    else:
                        merged.setdefault(key, value)
        return _longest(merged, root, depth + 1)
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    cost = 4
    for kind in kinds:
        if kind == "string":   # formats (emails, URIs) have no length bound of their own
            cost = max(cost, 2 + node.get("maxLength", 120 if "format" in node else 40))
        elif kind in ("integer", "number"):
            cost = max(cost, NUMBER_TOKENS)
        elif kind == "array":
            items = node.get("items", {})
            prefix = node.get("prefixItems") or []
            cost = max(cost, 2 + sum(2 + _longest(p, root, depth + 1) for p in prefix)
                       + node.get("maxItems", 5) * (2 + _longest(items, root, depth + 1)))
        elif kind == "object" or (kind is None and "properties" in node):
            properties = node.get("properties") or {}
            cost = max(cost, 2 + sum(_key_tokens(name) + _longest(sub, root, depth + 1)
                                     for name, sub in properties.items()))
            cost += _longest_extra_properties(node, root, depth)
        elif kind is None:
            cost = max(cost, ANY_TOKENS)
    return cost


def _longest_extra_properties(node: dict[str, Any], root: Any, depth: int) -> int:
    """Keys beyond `properties`: those `patternProperties` or `additionalProperties` allow,
    counted as `maxProperties` (or 5) of the longest such value."""
    values = [v for v in (node.get("patternProperties") or {}).values()]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) or extra is True:
        values.append(extra if isinstance(extra, dict) else {})
    elif extra is None and node.get("type") == "object":
        values.append({})   # an open object: the decoder may add keys of its own
    if not values:
        return 0
    count = node.get("maxProperties", 5) if isinstance(node.get("maxProperties"), int) else 5
    return min(count, 10) * (8 + max(_longest(v, root, depth + 1) for v in values))


def _shortest(node: Any, root: Any, depth: int) -> int:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return 1
    if isinstance(node.get("$ref"), str):
        return _shortest({**ref_target(root, node["$ref"]),
                          **{k: v for k, v in node.items() if k != "$ref"}}, root, depth + 1)
    if "const" in node or "enum" in node:
        values = node["enum"] if isinstance(node.get("enum"), list) else [node.get("const")]
        return 1 + min((len(json.dumps(v)) // 3 for v in values), default=1)
    options = [o for key in ("anyOf", "oneOf") for o in node.get(key) or []]
    if options:
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        own = _shortest(rest, root, depth + 1) if _SHAPE_KEYS & rest.keys() else 1
        return max(own, min(_shortest(o, root, depth + 1) for o in options))
    cost = 1
    for member in node.get("allOf") or []:
        cost = max(cost, _shortest(member, root, depth + 1))
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    best = None
    for kind in kinds:
        if kind == "string":
            here = 2 + node.get("minLength", 1) // 3 + (8 if "format" in node else 0)
        elif kind == "array":
            here = 2 + node.get("minItems", 0) * (1 + _shortest(node.get("items", {}), root,
                                                                 depth + 1))
        elif kind == "object" or (kind is None and "properties" in node):
            properties = node.get("properties") or {}
            here = 2 + sum(_key_tokens(name) + _shortest(properties.get(name, {}), root, depth + 1)
                           for name in node.get("required") or [] if isinstance(name, str))
        else:
            here = 2
        best = here if best is None else min(best, here)
    return max(cost, best or 1)


def _resolved(node: dict[str, Any], root: Any) -> dict[str, Any]:
    seen = 0
    while isinstance(node.get("$ref"), str) and seen < MAX_DEPTH:
        node = {**ref_target(root, node["$ref"]), **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


INFINITE = 10**9


def distinct_instances(schema: Any) -> int:
    """How many different records a (decoding) schema allows, up to INFINITE.

    A schema of enums, booleans and closed objects may allow only a handful (`{}` and
    `{"dropcap": "letter"}`); asking for more distinct records than that cannot succeed.
    Anything not plainly finite counts as INFINITE."""
    return min(INFINITE, _count(schema, schema, 0))


def _count(node: Any, root: Any, depth: int) -> int:
    if node is False:
        return 0
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return INFINITE
    if isinstance(node.get("$ref"), str):
        if set(node) - {"$ref", "description", "title", "$comment"}:
            return INFINITE
        return _count(ref_target(root, node["$ref"]), root, depth + 1)
    if isinstance(node.get("enum"), list):
        return len(node["enum"])
    if "const" in node:
        return 1
    if {"allOf", "not", "if", "dependentSchemas", "patternProperties"} & node.keys():
        return INFINITE
    options = [o for key in ("anyOf", "oneOf") for o in node.get(key) or []]
    if options:
        return min(INFINITE, sum(_count(o, root, depth + 1) for o in options))
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return min(INFINITE, sum(_count_type(node, kind, root, depth) for kind in kinds))


def _count_type(node: dict[str, Any], kind: Any, root: Any, depth: int) -> int:
    if kind == "boolean":
        return 2
    if kind == "null":
        return 1
    if kind == "integer" and isinstance(node.get("minimum"), int) and isinstance(
            node.get("maximum"), int):
        return max(0, node["maximum"] - node["minimum"] + 1)
    if kind == "object" and node.get("additionalProperties") is False:
        total = 1
        required = set(node.get("required") or [])
        for name, sub in (node.get("properties") or {}).items():
            total *= _count(sub, root, depth + 1) + (name not in required)
            if total >= INFINITE:
                return INFINITE
        return total
    if kind == "array" and isinstance(node.get("maxItems"), int) and not node.get("prefixItems"):
        per_item = _count(node.get("items", {}), root, depth + 1)
        low = node.get("minItems", 0) if isinstance(node.get("minItems"), int) else 0
        total = sum(per_item ** k for k in range(low, min(node["maxItems"], 8) + 1))
        return min(INFINITE, total) if node["maxItems"] <= 8 or per_item <= 1 else INFINITE
    return INFINITE

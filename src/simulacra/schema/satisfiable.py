"""Schemas with no valid instance, found before any model runs.

A schema whose bounds contradict each other (`minimum` above `maximum`, `minLength` above
`maxLength`, an empty `enum`, a required property the schema forbids) cannot yield a record;
running it would only burn attempts. The check follows what an instance *must* contain: the
root, required properties, `allOf` members, the first `minItems` items; it follows `$ref`s
(once each) and counts an `anyOf`/`oneOf` as unsatisfiable only when every branch is. A
contradiction in an optional part is not an error: the decoder simply never takes it.
"""

from __future__ import annotations

from typing import Any

from simulacra.schema.dialect import pointer

Problem = tuple[str, str, str]   # (path, keyword, why)


def unsatisfiable(schema: dict[str, Any] | bool) -> list[Problem]:
    """The contradictions that leave `schema` (2020-12 form) with no valid instance."""
    return _problems(schema, "", schema, frozenset())


def _problems(node: Any, path: str, root: Any, refs: frozenset[str]) -> list[Problem]:
    here = path or "(root)"
    if node is False:
        return [(here, "false", "the schema `false` allows no value")]
    if not isinstance(node, dict):
        return []
    found = _local(node, here)
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and ref not in refs:
        target = pointer(root, ref)
        found += _problems(target if target is not None else {}, path, root, refs | {ref})
    for i, sub in enumerate(node.get("allOf") or []):
        found += _problems(sub, _join(path, f"allOf.{i}"), root, refs)
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            per_branch = [_problems(b, _join(path, f"{key}.{i}"), root, refs)
                          for i, b in enumerate(branches)]
            if all(per_branch):
                found += per_branch[0]
    properties = node.get("properties") or {}
    for name in node.get("required") or []:
        if not isinstance(name, str):
            continue
        sub = properties.get(name)
        if sub is None and node.get("additionalProperties") is False and not node.get(
                "patternProperties"):
            found.append((_join(path, "required"), "required",
                          f"'{name}' is required but additionalProperties is false and it is "
                          "not in properties"))
        elif sub is not None:
            found += _problems(sub, _join(path, f"properties.{name}"), root, refs)
    if isinstance(node.get("minItems"), int) and node["minItems"] > 0:
        prefix = node.get("prefixItems") or []
        for i, sub in enumerate(prefix[:node["minItems"]]):
            found += _problems(sub, _join(path, f"prefixItems.{i}"), root, refs)
        if node["minItems"] > len(prefix) and "items" in node:
            found += _problems(node["items"], _join(path, "items"), root, refs)
    return found


def _local(node: dict[str, Any], here: str) -> list[Problem]:
    found: list[Problem] = []
    for low_key, high_key, what in (("minimum", "maximum", "number"),
                                    ("minLength", "maxLength", "string length"),
                                    ("minItems", "maxItems", "item count"),
                                    ("minProperties", "maxProperties", "property count")):
        low, high = node.get(low_key), node.get(high_key)
        if _number(low) and _number(high) and low > high:
            found.append((here, low_key, f"{low_key} {low} is above {high_key} {high}: no "
                          f"{what} fits; lower {low_key} or raise {high_key}"))
    low = node.get("exclusiveMinimum", node.get("minimum"))
    high = node.get("exclusiveMaximum", node.get("maximum"))
    strict = "exclusiveMinimum" in node or "exclusiveMaximum" in node
    if strict and _number(low) and _number(high) and low >= high:
        found.append((here, "exclusiveMinimum", f"no number lies between {low} and {high} "
                      "(exclusive); widen the bounds"))
    if node.get("enum") == []:
        found.append((here, "enum", "an empty enum allows no value; list at least one"))
    if node.get("type") == []:
        found.append((here, "type", "an empty type list allows no value; name a type"))
    return found


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

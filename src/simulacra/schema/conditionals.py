"""`if`/`then`/`else` rewritten as a union the grammar can enforce.

llguidance has no conditionals; left alone, `if`/`then`/`else` would only be checked after
decoding, and a small model that keeps choosing the `if` case with a value `then` forbids
fails every retry. A conditional is two cases, so the decoding copy says so:

    anyOf: [allOf: [if, then], allOf: [not-if, else]]

"not-if" is what the grammar can state for the common discriminator shapes (a property
that must be present; a property whose value is one of a few listed ones, the rest of its
enum being the other case). For any other `if` the second case is `else` alone, and the
record is still validated against the user's schema, so a record that takes it while
matching `if` is retried, never written.
"""

from __future__ import annotations

from typing import Any

from simulacra.schema.dialect import SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_ONE


def conditionals_as_unions(node: Any) -> None:
    """Rewrite every `if`/`then`/`else` in `node` (a decoding copy, changed in place)."""
    if not isinstance(node, dict):
        return
    for key in SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                conditionals_as_unions(sub)
    for key in SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            for sub in node[key]:
                conditionals_as_unions(sub)
    for key in SCHEMA_ONE:
        conditionals_as_unions(node.get(key))
    if "if" not in node:
        node.pop("then", None)
        node.pop("else", None)
        return
    condition = node.pop("if")
    then, otherwise = node.pop("then", True), node.pop("else", True)
    cases = [{"allOf": [condition, then]}]
    negated = _negation(condition, node.get("properties") or {})
    if negated is not False:
        cases.append({"allOf": [negated, otherwise]} if negated is not True else
                     {"allOf": [otherwise]})
    union = {"anyOf": cases}
    if "anyOf" in node:
        node.setdefault("allOf", []).append(union)
    else:
        node.update(union)


def _negation(condition: Any, properties: dict[str, Any]) -> Any:
    """A schema that matches exactly what `condition` does not, where the grammar can say it;
    else True (no constraint: the validation after decoding decides). False: nothing can
    fail the condition, so the second case is impossible."""
    if condition is True:
        return False
    if condition is False:
        return True
    if not isinstance(condition, dict):
        return True
    keys = set(condition) - {"$comment", "title", "description"}
    required = condition.get("required") or []
    tested = condition.get("properties") or {}
    if keys == {"required"} and len(required) == 1:
        return {"properties": {required[0]: False}}  # the property is absent
    if keys - {"properties", "required"} or len(tested) != 1 or not set(required) <= set(tested):
        return True
    (name, test), = tested.items()
    rest = _other_values(test, properties.get(name))
    if rest is None:
        return True
    present_with_another = ({"required": [name], "properties": {name: {"enum": rest}}}
                            if rest else False)
    if name in required:  # absent also fails the condition
        absent = {"properties": {name: False}}
        return {"anyOf": [absent, present_with_another]} if rest else absent
    return present_with_another


def _other_values(test: Any, declared: Any) -> list[Any] | None:
    """The values `declared` allows that `test` (a const or an enum) does not; None when
    either side is not a list of values."""
    if not isinstance(test, dict) or not isinstance(declared, dict):
        return None
    if "const" in test:
        chosen = [test["const"]]
    elif isinstance(test.get("enum"), list):
        chosen = test["enum"]
    else:
        return None
    if set(test) - {"const", "enum", "type", "title", "description"}:
        return None
    if isinstance(declared.get("enum"), list):
        allowed = declared["enum"]
    elif declared.get("type") == "boolean":
        allowed = [True, False]
    else:
        return None
    return [v for v in allowed if not any(_same(v, c) for c in chosen)]


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b

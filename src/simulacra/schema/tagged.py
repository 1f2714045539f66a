"""`oneOf` branches told apart by a tag that the decoding copy makes required.

Real schemas often hold a tagged union whose tag is optional:

    oneOf: [{properties: {type: {enum: ["text"]},  label: ...}, required: ["label"]},
            {properties: {type: {enum: ["email"]}, label: ...}, required: ["label"]}]

The grammar decodes `oneOf` as `anyOf` (it cannot forbid a second match). A value that
leaves the tag out, `{"label": "Name"}`, matches every branch, so `oneOf` rejects it, and a
small model that keeps leaving it out fails every retry. When every branch declares the same
property with `const`/`enum` values that no other branch allows, the decoding copy requires
that property in each branch: a decoded value then states its tag and matches one branch
only. Requiring a property narrows what is decoded and nothing else, so every record still
satisfies the user's schema.

Real schemas also say "exactly one of these keys" with branches that differ only in what
they require:

    properties: {secret: ..., configMap: ..., path: ...},
    oneOf: [{required: ["secret"]}, {required: ["configMap"]}]

A value with both keys matches both branches and is rejected, and a model that writes every
key it is shown keeps failing. The grammar's copy of such a `oneOf` (`forbid_others_required`)
lets each branch forbid the keys only the other branches require, so a value that matches one
branch lacks a key each other branch requires. It is applied to the grammar only: a server
given the decoding schema may not take `false` as a property's schema.
"""

from __future__ import annotations

import json
from typing import Any

from simulacra.schema.dialect import pointer

_MAX_REF_HOPS = 8   # a $ref chain longer than this (or a cycle) is left alone


def require_tags(root: Any) -> None:
    """Make the tag of every tagged `oneOf` in `root` (a decoding copy, changed in place)
    required in each of its branches. A branch reached through a local `$ref` is changed
    where it is defined; that narrows its other uses too, which stays valid."""
    for node in _nodes(root):
        tag = union_tag(root, node)
        if tag is None:
            continue
        for branch in _branches(root, node):
            required = branch.setdefault("required", [])
            if isinstance(required, list) and tag not in required:
                required.append(tag)


def forbid_others_required(root: Any) -> None:
    """In a grammar's copy of `root` (changed in place), let each branch of a `oneOf` that is
    told apart by its `required` forbid the properties that only other branches require.

    Only where every branch is an object schema of its own (no `$ref`) and no branch's
    required names are all required by another (else a value can match both whatever is
    forbidden). A branch that then forbids a name its object requires matches nothing, and
    the grammar leaves it out: that is what `oneOf` means there too."""
    for node in _nodes(root):
        members = node.get("oneOf")
        if not isinstance(members, list) or len(members) < 2:
            continue
        if not all(isinstance(m, dict) and "$ref" not in m
                   and isinstance(m.get("properties", {}), dict) for m in members):
            continue
        required = [{r for r in m.get("required") or [] if isinstance(r, str)} for m in members]
        if any(mine <= theirs for i, mine in enumerate(required)
               for j, theirs in enumerate(required) if i != j):
            continue
        for i, member in enumerate(members):
            others = set().union(*(theirs for j, theirs in enumerate(required) if j != i))
            properties = member.setdefault("properties", {})
            for name in sorted(others - required[i]):
                properties[name] = False


def union_tag(root: Any, node: Any) -> str | None:
    """The tag of `node`'s `oneOf`: the property every branch declares with `const`/`enum`
    values that no other branch allows; None if the branches have none."""
    branches = _branches(root, node)
    if len(branches) < 2 or not all(isinstance(b, dict) for b in branches):
        return None
    return _tag(root, branches)


def _branches(root: Any, node: Any) -> list[Any]:
    members = node.get("oneOf") if isinstance(node, dict) else None
    return [_resolved(root, member) for member in members] if isinstance(members, list) else []


def _nodes(root: Any) -> list[dict[str, Any]]:
    """Every schema in `root`'s tree (not following `$ref`), parents first."""
    from simulacra.schema.model import subschemas  # model imports this module

    out, todo = [], [root] if isinstance(root, dict) else []
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(subschemas(node))
    return out


def _resolved(root: Any, node: Any) -> Any:
    """`node` with a chain of local `$ref`s followed (a `$ref` beside other keywords is
    left as it is: those keywords would apply too); None for a remote or looping one."""
    for _ in range(_MAX_REF_HOPS):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        if set(node) - {"$ref", "description", "title", "$comment"}:
            return None
        node = pointer(root, node["$ref"])
    return None


def _tag(root: Any, branches: list[dict[str, Any]]) -> str | None:
    """The property every branch declares with `const`/`enum` values that no other branch
    allows; None if there is none."""
    if any(_excludes_objects(b) for b in branches) or len({id(b) for b in branches}) < len(branches):
        return None
    names = set.intersection(*(set(b.get("properties") or {}) for b in branches))
    for name in sorted(names):
        values = [_allowed(_resolved(root, b["properties"][name])) for b in branches]
        if any(v is None for v in values):
            continue
        if sum(len(v) for v in values) != len(set().union(*values)):   # a value in two branches
            continue
        return name
    return None


def _allowed(prop: Any) -> set[str] | None:
    """The JSON texts of the values a property schema lists (`const` or `enum`), or None."""
    if not isinstance(prop, dict):
        return None
    if "const" in prop:
        return {json.dumps(prop["const"], sort_keys=True)}
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return {json.dumps(v, sort_keys=True) for v in prop["enum"]}
    return None


def _excludes_objects(branch: dict[str, Any]) -> bool:
    kinds = branch.get("type", "object")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return "object" not in kinds or not isinstance(branch.get("properties"), dict)

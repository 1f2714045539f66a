"""JSON Schema dialects: read any draft, decode under one (2020-12).

People publish schemas in draft-04, -06, -07, 2019-09 and 2020-12, often without saying which,
and with keywords of their own (`self`, `markdownDescription`, misspellings such as
`additonalProperties`). The specification says a validator ignores keywords it does not know,
and every validator does; so does simulacra. `normalize` returns a copy for the decoder in
2020-12 form:

- draft-04 boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric form;
- `dependencies` becomes `dependentRequired` (lists) and `dependentSchemas` (schemas);
- array-form `items` becomes `prefixItems`, with `additionalItems` as the new `items`;
- `$recursiveRef` becomes a plain `$ref`;
- unknown keywords are dropped and listed (with their paths) as ignored. A subschema that a
  `$ref` points at inside an unknown keyword (`#/components/schemas/X`) is kept reachable by
  moving it under `$defs`.

Validation never uses this copy: records are validated against the user's schema with the
validator of its own dialect (`validator_class`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jsonschema

# Every keyword of 2020-12 and the older drafts, by what it holds.
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("items", "additionalProperties", "additionalItems", "not", "contains", "if", "then",
              "else", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
              "contentSchema")
VALUE_KEYWORDS = frozenset({
    "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
    "$recursiveAnchor", "$vocabulary", "$comment", "type", "const", "enum", "multipleOf",
    "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
    "pattern", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains",
    "maxProperties", "minProperties", "required", "dependentRequired", "dependencies", "format",
    "contentEncoding", "contentMediaType", "title", "description", "default", "deprecated",
    "readOnly", "writeOnly", "examples",
})
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated", "readOnly",
                         "writeOnly", "$comment", "contentEncoding", "contentMediaType"})
_KEPT_BESIDE_REF = ANNOTATIONS | {"$ref", "$defs", "definitions", "$schema", "$id", "x-guidance"}
KNOWN_KEYWORDS = VALUE_KEYWORDS | set(SCHEMA_MAPS) | set(SCHEMA_LISTS) | set(SCHEMA_ONE)
# Dialects by the `$schema` URI fragment that names them.
DIALECTS = {"draft-03": "draft-04", "draft-04": "draft-04", "draft-06": "draft-06",
            "draft-07": "draft-07", "2019-09": "2019-09", "2020-12": "2020-12"}
DEFAULT_DIALECT = "2020-12"
DIALECT_URI = "https://json-schema.org/draft/2020-12/schema"
_REF_OVERRIDES_SIBLINGS = ("draft-04", "draft-06", "draft-07")
# Beside a `$ref` in those drafts: what still matters (definitions stay resolvable).
_VALIDATORS = {
    "draft-04": jsonschema.Draft4Validator, "draft-06": jsonschema.Draft6Validator,
    "draft-07": jsonschema.Draft7Validator, "2019-09": jsonschema.Draft201909Validator,
    "2020-12": jsonschema.Draft202012Validator,
}


@dataclass
class Normalized:
    """The decoder's copy of a schema, and the keywords it ignored (path, keyword)."""

    schema: dict[str, Any] | bool
    dialect: str
    ignored: list[tuple[str, str]] = field(default_factory=list)


def dialect_of(js: Any) -> str:
    """The draft a schema is written in: its `$schema`, else draft-04 when it uses draft-04's
    boolean `exclusiveMinimum` (a sure sign), else 2020-12."""
    if isinstance(js, dict):
        uri = js.get("$schema")
        if isinstance(uri, str):
            for marker, name in DIALECTS.items():
                if marker in uri:
                    return name
        if _uses_boolean_exclusive(js):
            return "draft-04"
    return DEFAULT_DIALECT


def validator_class(js: Any) -> type:
    """The jsonschema validator class for a schema's own dialect."""
    return _VALIDATORS[dialect_of(js)]


def normalize(js: dict[str, Any] | bool) -> Normalized:
    """A 2020-12 copy of `js` with unknown keywords dropped (see the module docstring)."""
    dialect = dialect_of(js)
    if not isinstance(js, dict):
        return Normalized(js, dialect)
    out = copy.deepcopy(js)
    ignored: list[tuple[str, str]] = []
    _relocate_referenced(out)
    _normalize(out, "", dialect, ignored, out)
    out["$schema"] = DIALECT_URI   # the copy is 2020-12 now, whatever the original said
    return Normalized(out, dialect, ignored)


def _normalize(node: Any, path: str, dialect: str, ignored: list[tuple[str, str]],
               root: dict[str, Any]) -> None:
    if not isinstance(node, dict):
        return
    for key in list(node):
        if key == "id" and dialect == "draft-04":
            del node[key]   # draft-04's `$id`: an identifier, nothing to decode
        elif key not in KNOWN_KEYWORDS and key != "x-guidance":
            ignored.append((_join(path, key), key))
            del node[key]
    node.pop("$schema", None)   # nested ones too (bundled schemas carry one per definition)
    if "$ref" in node and dialect in _REF_OVERRIDES_SIBLINGS:
        # Before 2019-09 a `$ref` replaces its object: validators ignore the keywords beside it.
        for key in [k for k in node if k not in _KEPT_BESIDE_REF]:
            del node[key]
    if dialect == "draft-04" or _uses_boolean_exclusive(node):
        for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            flag = node.get(exclusive)
            if isinstance(flag, bool):
                del node[exclusive]
                if flag and bound in node:
                    node[exclusive] = node.pop(bound)
    deps = node.pop("dependencies", None)
    if isinstance(deps, dict):
        for name, dep in deps.items():
            if isinstance(dep, list):
                node.setdefault("dependentRequired", {})[name] = dep
            else:
                node.setdefault("dependentSchemas", {})[name] = dep
    items = node.get("items")
    if isinstance(items, list):
        node["prefixItems"] = items
        extra = node.pop("additionalItems", None)
        if extra is None:
            del node["items"]
        else:
            node["items"] = extra
    else:
        node.pop("additionalItems", None)   # meaningless without array-form items
    if "$recursiveRef" in node:
        node["$ref"] = node.pop("$recursiveRef")
    for key in SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                _normalize(sub, _join(path, f"{key}.{name}"), dialect, ignored, root)
    for key in SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key]):
                _normalize(sub, _join(path, f"{key}.{i}"), dialect, ignored, root)
    for key in SCHEMA_ONE:
        if key in node:
            _normalize(node[key], _join(path, key), dialect, ignored, root)


def _relocate_referenced(root: dict[str, Any]) -> None:
    """Move subschemas that `$ref`s reach through unknown keywords under `$defs`, and point
    the refs there, so dropping the unknown keyword keeps them resolvable."""
    for node in ref_holders(root):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            continue
        parts = ref[2:].split("/")
        if not parts or parts[0] in KNOWN_KEYWORDS:
            continue
        target = pointer(root, ref)
        if not isinstance(target, dict | bool):
            continue
        name = "~".join(parts).replace("/", "_")
        root.setdefault("$defs", {})[name] = target
        node["$ref"] = f"#/$defs/{name}"


def ref_holders(node: Any) -> list[dict[str, Any]]:
    """Every dict holding a string `$ref`, anywhere in `node`."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("$ref"), str):
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def pointer(root: Any, ref: str) -> Any:
    """What a local `$ref` (`#`, `#/$defs/X`, with ~0/~1 escapes) points at; None if nothing."""
    target = root
    for part in ref[2:].split("/") if ref.startswith("#/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        target = target.get(part) if isinstance(target, dict) else None
    return target


def _uses_boolean_exclusive(node: dict[str, Any]) -> bool:
    return isinstance(node.get("exclusiveMinimum"), bool) or isinstance(
        node.get("exclusiveMaximum"), bool)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

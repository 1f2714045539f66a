"""The one place a decoding schema becomes a grammar, for `simulacra check` and the decoder.

llguidance compiles a JSON Schema to a grammar. What it cannot enforce it names
("Unimplemented keys: ["uniqueItems"]", "oneOf constraints are not supported", a regex with a
look-around, a recursive `$ref` with sibling keys); those parts are then *checked*: the
grammar is compiled without them (llguidance's lenient mode, or the part removed from the
decoding copy) and every record is validated against the user's schema after decoding, so a
record that breaks them is retried, never written. A schema is refused only when no grammar
can be made at all.

`check` and the decoder both call `compile_grammar`, so a schema `check` accepts is never
refused later.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from simulacra.errors import UnsupportedSchemaError
from simulacra.schema.dialect import SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_ONE, pointer, ref_holders
from simulacra.schema.tagged import forbid_others_required

# The layout of a reply's JSON, as json.dumps's `separators` (item, key). The prompt's examples
# are written in the same layout, so the model continues what it has seen. SPACED is
# json.dumps's own; without the spaces a MedicalBilling record is 61 tokens instead of 72
# (`":"` and `","` are single tokens), and every token is a pass through the model.
SPACED = (", ", ": ")
COMPACT = (",", ":")


def separators_for(decoding: dict[str, Any] | bool, constrained: bool = True
                   ) -> tuple[str, str]:
    """The layout for records of a decoding schema: COMPACT when a constrained decoder writes
    them and the grammar leaves the model no choice of shape (which keys, how many items,
    null or a value), else SPACED. An endpoint (`constrained=False`) keeps SPACED: through a
    server the 270M model copied compact examples more often.

    Right after a separator is where the model makes those choices, and the merged tokens of
    the compact layout move them: measured on the 270M model, lists ended sooner (Actor: 3.4
    films a record against 4.6, the examples having 5) and a nullable field was null in 71%
    of product reviews against 24%, even with only the keys' spaces dropped. Where the shape
    is fixed, the layout changes the token count and nothing else.
    """
    return COMPACT if constrained and not _open_shape(decoding) else SPACED


_OPEN_KEYWORDS = {"items", "prefixItems", "patternProperties", "anyOf", "oneOf", "if",
                  "dependentSchemas", "dependentRequired"}
_TYPED = {"type", "const", "enum", "$ref", "allOf"}   # a schema with none of these takes any value


def _open_shape(schema: Any) -> bool:
    """Whether a schema, or one inside it, lets the record's shape vary: arrays, optional or
    extra properties, unions, null, conditionals, or a value of any type."""
    if not isinstance(schema, dict):
        return schema is not False   # `true` takes any value
    kind = schema.get("type")
    if isinstance(kind, list) or kind in ("array", "null") or not _TYPED & schema.keys() or \
            _OPEN_KEYWORDS & schema.keys():
        return True
    if schema.get("additionalProperties", False) is not False or \
            (isinstance(schema.get("enum"), list) and None in schema["enum"]):
        return True
    properties = schema.get("properties") or {}
    if not set(properties) <= set(schema.get("required") or ()):
        return True
    inner = [*properties.values(), *(schema.get("$defs") or {}).values(),
             *(schema.get("allOf") or [])]
    return any(_open_shape(s) for s in inner)


def dumps(value: Any, separators: tuple[str, str] = SPACED) -> str:
    """`value` as JSON in the layout a grammar compiled with the same separators writes."""
    return json.dumps(value, ensure_ascii=False, separators=separators)


@dataclass(frozen=True)
class CompiledGrammar:
    """A grammar and what the decoder does not enforce (checked after decoding instead)."""

    grammar: str
    unenforced: tuple[str, ...] = field(default=())


def compile_grammar(decoding: dict[str, Any] | bool,
                    separators: tuple[str, str] = SPACED) -> CompiledGrammar:
    """Compile a decoding schema (see `Schema.decoding_schema`) for replies in the layout of
    `separators`; raise UnsupportedSchemaError with llguidance's reason when no grammar can
    be made."""
    return _compile(json.dumps(decoding), tuple(separators))


@lru_cache(maxsize=128)
def _compile(schema_json: str, separators: tuple[str, str]) -> CompiledGrammar:
    import llguidance

    schema = json.loads(schema_json)
    if schema is True:
        schema = {}
    if isinstance(schema, dict):
        forbid_others_required(schema)   # llguidance decodes oneOf as anyOf
    layout = {"item_separator": separators[0], "key_separator": separators[1]}
    grammar, error = _try(schema, layout, lenient=False)
    if not error:
        return CompiledGrammar(grammar)
    notes = [error]
    grammar, lenient_error = _try(schema, layout, lenient=True)
    if lenient_error:
        repaired, dropped = _without_undecodable(schema, lenient_error, llguidance)
        if dropped:
            grammar, lenient_error = _try(repaired, layout, lenient=True)
            notes.extend(dropped)
    if lenient_error:
        raise UnsupportedSchemaError(
            f"the schema cannot be decoded: {_first_line(lenient_error)}", path="(root)")
    return CompiledGrammar(grammar, tuple(_first_line(n) for n in notes))


def _try(schema: dict[str, Any], layout: dict[str, str], *, lenient: bool
         ) -> tuple[str, str]:
    import llguidance

    options = {"whitespace_flexible": False, **layout, "lenient": lenient}
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=options)
    except ValueError as exc:
        return "", str(exc)
    error = llguidance.LLMatcher.validate_grammar(grammar)
    if error and not error.startswith("WARNING"):
        return "", error
    return grammar, ""


def _without_undecodable(schema: dict[str, Any], error: str, llguidance: Any
                         ) -> tuple[dict[str, Any], list[str]]:
    """A copy without the parts llguidance cannot compile even leniently: patterns its regex
    engine refuses (look-arounds, back-references) and keywords beside a recursive `$ref`.
    Records are still validated against them after decoding."""
    out = copy.deepcopy(schema)
    dropped: list[str] = []
    for path, node in _nodes(out, ""):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and not _regex_ok(pattern, llguidance):
            del node["pattern"]
            dropped.append(f"{_join(path, 'pattern')} {pattern!r} is checked after decoding "
                           "(its regex cannot be compiled to a grammar)")
        for key in ("patternProperties",):
            for name in list(node.get(key) or {}):
                if not _regex_ok(name, llguidance):
                    del node[key][name]
                    dropped.append(f"{_join(path, key)} {name!r} is checked after decoding")
    if "circular" in error and unroll_recursion(out, RECURSION_DEPTH):
        dropped.append(f"recursive $refs unrolled to depth {RECURSION_DEPTH}")
    return out, dropped


RECURSION_DEPTH = 3


def unroll_recursion(root: dict[str, Any], depth: int) -> bool:
    """Replace recursion by `depth` layered copies of each recursive definition; the last
    layer's recursive refs become `{}` (any value, validated after decoding). Returns
    whether anything was recursive. llguidance handles plain recursion itself, but not a
    recursive `$ref` reached through an intersection (sibling keywords)."""
    targets = {ref for node in ref_holders(root) if (ref := node["$ref"]).startswith("#")}
    edges = {ref: {n["$ref"] for n in ref_holders(pointer(root, ref))} for ref in targets}
    cyclic = {ref for ref in targets if _reaches(ref, ref, edges)}
    if not cyclic:
        return False
    names = {ref: "rec_" + "".join(c if c.isalnum() else "_" for c in ref[1:]) for ref in cyclic}
    originals = {ref: copy.deepcopy(pointer(root, ref)) for ref in cyclic}
    defs = root.setdefault("$defs", {})
    for level in range(1, depth + 1):
        for ref in cyclic:
            layer = copy.deepcopy(originals[ref])
            _point(layer, cyclic, names, level + 1 if level < depth else None)
            defs[f"{names[ref]}_{level}"] = layer
    _point(root, cyclic, names, 1, skip=defs)
    return True


def _point(node: Any, cyclic: set[str], names: dict[str, str], level: int | None,
           skip: Any = None) -> None:
    """Point refs to cyclic targets at `level`'s copies (`{}` when level is None)."""
    stack = [node]
    while stack:
        item = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if child is skip:
                continue
            if isinstance(child, dict) and child.get("$ref") in cyclic:
                target = child.pop("$ref")
                if level is None:
                    child.clear()   # any value: checked against the schema after decoding
                else:
                    child["$ref"] = f"#/$defs/{names[target]}_{level}"
            stack.append(child)


def _reaches(start: str, goal: str, edges: dict[str, set[str]]) -> bool:
    seen: set[str] = set()
    stack = list(edges.get(start, ()))
    while stack:
        ref = stack.pop()
        if ref == goal:
            return True
        if ref not in seen:
            seen.add(ref)
            stack.extend(edges.get(ref, ()))
    return False


def _regex_ok(pattern: str, llguidance: Any) -> bool:
    try:
        grammar = llguidance.LLMatcher.grammar_from_regex(pattern)
    except ValueError:
        return False
    error = llguidance.LLMatcher.validate_grammar(grammar)
    return not error or error.startswith("WARNING")


def _nodes(node: Any, path: str):
    """Every schema object in `node`, with its dotted path (parents before children)."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key in SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                yield from _nodes(sub, _join(path, f"{key}.{name}"))
    for key in SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key]):
                yield from _nodes(sub, _join(path, f"{key}.{i}"))
    for key in SCHEMA_ONE:
        if key in node:
            yield from _nodes(node[key], _join(path, key))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return text
    # llguidance's regex errors put the reason on the last line, after a caret drawing
    reason = lines[-1] if lines[-1].startswith("error:") else lines[0]
    return reason.removeprefix("error: ")

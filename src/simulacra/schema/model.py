"""`Schema`: the one internal form of a data shape, whether it came from pydantic or JSON Schema.

It keeps the user's JSON Schema (what records must satisfy), a bounded copy for decoding
(so a constrained model cannot run away), the fields for the prompt, and a validator.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from simulacra.errors import SchemaError
from simulacra.schema.conditionals import conditionals_as_unions
from simulacra.schema.dialect import ANNOTATIONS, SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_ONE
from simulacra.schema.tagged import require_tags

# Decoding bounds. A record still satisfies the user's schema; these only keep the decoder
# from looping inside a string or a number until the token limit (measured on Gemma 270M).
# Default maxLength when the schema sets none: room for a few sentences. The generator ends
# free text at a sentence once it is past its usual length (backends/_decode.py), so this
# only stops a run-on; a value that reaches it is rejected as cut (checks/plausible.py).
MAX_STRING = 256
SPAN_STRING = 64         # the extractor's: a value read from a text is a phrase of it
STRING_CAP = 400         # any larger maxLength (e.g. 32767 meaning "no limit") is decoded as this
PATTERN_STRING = 128     # default maxLength of a string with a pattern (room for long formats)
FORMAT_STRING = 64       # default maxLength of a formatted string: llguidance's email, hostname,
                         # uri and date-time (fractional seconds) grammars have no end of their own
MAX_ITEMS = 5            # default maxItems
LIST_CAP = 50            # the most items examples may open an unbounded list to (see longest_lists)
INT_SPAN = 10**9         # default bounds for integers without minimum/maximum


class RecordInvalid(ValueError):
    """A candidate record failed validation; `errors` are one line each, with JSON paths."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    """A top-level field as the prompt describes it."""

    name: str
    type: str
    description: str = ""
    required: bool = True
    examples: tuple[Any, ...] = ()   # the schema's own `examples` for the field


@dataclass
class Schema:
    """A data shape: `json_schema` is the contract, `model` the pydantic class if there is one."""

    name: str
    json_schema: dict[str, Any]
    model: type[BaseModel] | None = None
    _validator: Any = field(default=None, repr=False)
    _support: Any = field(default=None, repr=False)
    _normalized: Any = field(default=None, repr=False)

    @classmethod
    def from_pydantic(cls, model: type[BaseModel], *, check: bool = True) -> Schema:
        try:
            js = model.model_json_schema()
        except Exception as exc:  # pydantic names the field and the type it cannot express
            raise SchemaError(
                f"{model.__name__} cannot be expressed as JSON Schema: {str(exc).splitlines()[0]}"
            ) from None
        schema = cls(name=model.__name__, json_schema=js, model=model)
        return cls._checked(schema) if check else schema

    @classmethod
    def from_json_schema(cls, data: dict[str, Any] | bool, name: str | None = None, *,
                         check: bool = True) -> Schema:
        """Any JSON Schema of any draft (see `dialect`): an object root gives records with
        fields, any other root (an array, a string, a `$ref`, `true`) records of that type."""
        from simulacra.schema.dialect import validator_class

        if not isinstance(data, dict | bool):
            raise SchemaError(f"a JSON Schema is an object or a boolean, not {type(data).__name__}")
        validator_cls = validator_class(data)
        try:
            validator_cls.check_schema(data)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise SchemaError(f"invalid JSON Schema at {where}: {exc.message}") from None
        validator = validator_cls(data, format_checker=validator_cls.FORMAT_CHECKER)
        title = data.get("title") if isinstance(data, dict) else None
        schema = cls(name=name or (title if isinstance(title, str) else None) or "Record",
                     json_schema=data, _validator=validator)
        return cls._checked(schema) if check else schema

    @staticmethod
    def _checked(schema: Schema) -> Schema:
        schema.support.raise_if_refused()
        return schema

    @property
    def support(self) -> Any:
        """How every keyword is handled (`schema.support.SupportReport`), computed once."""
        if self._support is None:
            from simulacra.schema.support import check_support

            self._support = check_support(self.json_schema)
        return self._support

    @property
    def normalized(self) -> dict[str, Any] | bool:
        """The schema in 2020-12 form without unknown keywords (the decoder's starting point)."""
        if self._normalized is None:
            from simulacra.schema.dialect import normalize

            self._normalized = normalize(self.json_schema).schema
        return self._normalized

    @cached_property
    def is_object(self) -> bool:
        """Whether records are JSON objects (CSV and Parquet need that). Cached: the engine
        asks for every reply it parses."""
        return self.object_view() is not None

    def object_view(self) -> dict[str, Any] | None:
        """The root as one object schema (`$ref`s followed, `allOf` merged): its properties
        and required list; None when records are not objects."""
        root = self.resolve(self.normalized) if isinstance(self.normalized, dict) else None
        if root is None:
            return None
        kinds = root.get("type")
        kinds = set(kinds) if isinstance(kinds, list) else {kinds}
        properties = dict(root.get("properties") or {})
        required = list(root.get("required") or [])
        for member in root.get("allOf") or []:
            member = self.resolve(member) if isinstance(member, dict) else {}
            properties.update(member.get("properties") or {})
            required += [r for r in member.get("required") or [] if r not in required]
            if member.get("type") is not None:
                kinds.add(member["type"] if isinstance(member["type"], str) else None)
        if "object" not in kinds and not (kinds == {None} and (properties or "additionalProperties"
                                                                in root)):
            return None
        if kinds - {"object", None}:
            return None   # object or something else: not always an object
        return {"properties": properties, "required": required}

    def columns_schema(self) -> dict[str, Any]:
        """The schema a table sink (CSV, Parquet) takes its columns from: the root's
        properties with `allOf` merged and `$ref` followed; `$defs` kept for nested refs."""
        root = self.normalized if isinstance(self.normalized, dict) else {}
        view = self.object_view() or {}
        return {**root, "properties": view.get("properties", {})}

    # -- what the prompt needs ---------------------------------------------------------
    @property
    def fields(self) -> list[Field]:
        view = self.object_view() or {}
        required = set(view.get("required", []))
        out = []
        for name, sub in (view.get("properties") or {}).items():
            if not isinstance(sub, dict):
                sub = {}
            resolved = self.resolve(sub)
            description = sub.get("description", resolved.get("description", ""))
            examples = sub.get("examples", resolved.get("examples"))
            out.append(Field(name, describe_type(self, resolved),
                             description if isinstance(description, str) else "",
                             name in required,
                             tuple(examples[:3]) if isinstance(examples, list) else ()))
        return out

    @property
    def description(self) -> str:
        text = self.json_schema.get("description") if isinstance(self.json_schema, dict) else ""
        return text if isinstance(text, str) else ""

    def resolve(self, sub: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (`#/$defs/X`, `#/definitions/X`, `#`)."""
        seen = 0
        root = self.normalized if isinstance(self.normalized, dict) else {}
        while isinstance(sub, dict) and isinstance(sub.get("$ref"), str) and seen < 32:
            ref = sub["$ref"]
            if not ref.startswith("#"):
                raise SchemaError(f"only local $ref are supported, got {ref!r}")
            target = ref_target(root, ref)
            sub = {**target, **{k: v for k, v in sub.items() if k != "$ref"}}
            seen += 1
        return sub

    # -- validation ----------------------------------------------------------------------
    def validate(self, data: Any) -> Any:
        """Return the record (a model instance, or a dict for JSON Schema), or raise RecordInvalid."""
        if self.model is not None:
            try:
                if isinstance(data, str | bytes):
                    return self.model.model_validate_json(data)
                return self.model.model_validate(data)
            except ValidationError as exc:
                raise RecordInvalid([
                    f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                    for e in exc.errors()
                ]) from None
        if isinstance(data, bytes) or (isinstance(data, str) and self.is_object):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise RecordInvalid([f"(root): not valid JSON: {exc}"]) from None
        errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise RecordInvalid([
                f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors
            ])
        return data

    def dump(self, record: Any) -> dict[str, Any]:
        """A record as JSON-ready data (dates as ISO strings, enums as values)."""
        if isinstance(record, BaseModel):
            return record.model_dump(mode="json")
        return record

    # -- decoding ------------------------------------------------------------------------
    def decoding_schema(self, *, close_objects: bool = True, max_string: int = MAX_STRING,
                        list_lengths: dict[str, int] | None = None) -> dict[str, Any] | bool:
        """The JSON Schema handed to the constrained decoder: the user's in 2020-12 form,
        unknown keywords dropped, with bounds added (objects closed unless told not to; a
        free string without maxLength gets `max_string`; an unbounded list MAX_ITEMS, or
        as many as `list_lengths` gives its key: see longest_lists)."""
        return bound_for_decoding(self.normalized, close_objects=close_objects,
                                  max_string=max_string, list_lengths=list_lengths)


def ref_target(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The subschema a local `$ref` (`#/$defs/X`) points at in `root`; {} if it is missing
    or a boolean schema."""
    from simulacra.schema.dialect import pointer

    target = pointer(root, ref)
    return target if isinstance(target, dict) else {}


def describe_type(schema: Schema, sub: Any, depth: int = 0) -> str:
    """A short, human type label for the prompt: `integer`, `list of string`, `one of "a", "b"`.
    Nested unions and lists are described three levels deep (schemas may be recursive)."""
    if not isinstance(sub, dict):
        return "any" if sub is True else ""
    sub = schema.resolve(sub)
    if depth > 3:
        return "value"
    if "const" in sub:
        return f"always {json.dumps(sub['const'])}"
    if isinstance(sub.get("enum"), list):
        return "one of " + ", ".join(json.dumps(v) for v in sub["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(sub.get(key), list):
            parts = dict.fromkeys(describe_type(schema, s, depth + 1) for s in sub[key])
            return " or ".join(p for p in parts if p)
    kind = sub.get("type", "")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        label = f"list of {describe_type(schema, sub.get('items', {}), depth + 1) or 'any'}"
    elif kind == "string" and "format" in sub:
        label = f"string ({sub['format']})"
    else:
        label = str(kind)
    limits = describe_limits(sub)
    return f"{label}, {limits}" if limits else label


def describe_limits(sub: dict[str, Any]) -> str:
    """The bounds a value must keep, in words, for models that are not held to them while
    decoding (endpoints in JSON mode, prompt-only routes): `0 to 30`, `2 to 16 characters`."""
    def span(low: Any, high: Any, unit: str = "") -> str:
        unit = f" {unit}" if unit else ""
        if low is not None and high is not None:
            return f"{low} to {high}{unit}"
        if low is not None:
            return f"at least {low}{unit}"
        return f"at most {high}{unit}" if high is not None else ""

    parts = [
        span(sub.get("minimum"), sub.get("maximum")),
        f"above {sub['exclusiveMinimum']}" if "exclusiveMinimum" in sub else "",
        f"below {sub['exclusiveMaximum']}" if "exclusiveMaximum" in sub else "",
        span(sub.get("minLength"), sub.get("maxLength"), "characters"),
        span(sub.get("minItems"), sub.get("maxItems"), "items"),
        f"matching {sub['pattern']}" if "pattern" in sub else "",
    ]
    return ", ".join(p for p in parts if p)


def bound_for_decoding(js: dict[str, Any] | bool, *, close_objects: bool = True,
                       max_string: int = MAX_STRING, list_lengths: dict[str, int] | None = None
                       ) -> dict[str, Any] | bool:
    """Copy `js` with every string, integer and array bounded and objects closed.

    An object is closed (`additionalProperties: false`) only where that cannot change what
    the schema means: never an `allOf` member, an object beside `allOf`/`anyOf`/`$ref`, or
    the target of a `$ref` used in such a place, where closing one part would forbid the
    properties another part adds. Conditionals become unions (schema/conditionals.py) and
    an optional tag of a `oneOf` becomes required (schema/tagged.py)."""
    if not isinstance(js, dict):
        return js
    out = copy.deepcopy(js)
    conditionals_as_unions(out)
    require_tags(out)
    _adopt_part_names(out)
    if list_lengths:
        _lengthen_lists(out, list_lengths)
    open_nodes: set[int] = set()
    _mark_open(out, out, open_nodes, merged=False)
    _bound(out, open_nodes, close_objects, max_string)
    return out


def keyed_values(examples: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """Every value in `examples` (records or lists of them), nested ones too, with the key
    it stands under: a list's items under the list's key, an example itself under "". What
    the examples show per key (longest_lists, the usual length of a key's text) is read
    from this one walk."""
    def visit(value: Any, key: str) -> Iterator[tuple[str, Any]]:
        yield key, value
        if isinstance(value, dict):
            for k, v in value.items():
                yield from visit(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from visit(v, key)

    for example in examples:
        yield from visit(example, "")


def longest_lists(examples: Iterable[Any]) -> dict[str, int]:
    """The longest list the examples hold under each key ("" for an example that is itself a
    list), where longer than MAX_ITEMS, at most LIST_CAP. The decoder's default bound of
    MAX_ITEMS would cut every such list short: a user whose examples list eight films gets
    lists of up to eight (bounds the schema sets stay as they are)."""
    longest: dict[str, int] = {}
    for key, value in keyed_values(examples):
        if isinstance(value, list) and len(value) > MAX_ITEMS:
            longest[key] = min(LIST_CAP, max(longest.get(key, 0), len(value)))
    return longest


def _lengthen_lists(root: dict[str, Any], lengths: dict[str, int]) -> None:
    """Give each array without maxItems under a key of `lengths` (a property of that name,
    or the root for "") that many items at most (the rest of _bound leaves it as set)."""
    def open_up(node: Any, n: int) -> None:
        if not isinstance(node, dict):
            return
        kinds = node.get("type")
        if (kinds == "array" or isinstance(kinds, list) and "array" in kinds
                or "items" in node) and "maxItems" not in node:
            node["maxItems"] = max(n, node.get("minItems", 0))
        for key in ("anyOf", "oneOf"):   # Optional[list[str]] is a union with null
            for member in node.get(key) or []:
                open_up(member, n)

    if "" in lengths:
        open_up(root, lengths[""])
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for name, sub in (node.get("properties") or {}).items():
            if name in lengths:
                open_up(sub, lengths[name])
        stack.extend(subschemas(node))


_ANNOTATION_KEYS = ANNOTATIONS | {"$id", "$schema", "$anchor", "$defs", "definitions"}
_MERGING = ("allOf", "anyOf", "oneOf", "$ref", "if", "then", "else", "dependentSchemas", "not")


def _mark_open(node: Any, root: dict[str, Any], open_nodes: set[int], merged: bool) -> None:
    """Collect (by id) the object schemas that are combined with others and must stay open."""
    if not isinstance(node, dict) or (id(node) in open_nodes and merged):
        return
    combined = merged or any(k in node for k in _MERGING if k != "$ref") or (
        "$ref" in node and set(node) - _ANNOTATION_KEYS - {"$ref"})
    if merged or (combined and not _parts_name_only_own_properties(node, root)):
        open_nodes.add(id(node))
    # a union whose siblings add no property (none, or only `type: object`): its members can
    # be closed, since a closed member forbids nothing the combination allows
    beside = set(node) - _ANNOTATION_KEYS - {"anyOf", "oneOf"}
    pure_union = not beside or (beside == {"type"} and node["type"] in ("object", ["object"]))
    if isinstance(node.get("$ref"), str) and combined:
        _mark_open(ref_target(root, node["$ref"]), root, open_nodes, merged=True)
    for key in ("allOf", "anyOf", "oneOf"):
        for member in node.get(key) or []:
            member_merged = key == "allOf" or not pure_union
            if member_merged and isinstance(member, dict):
                _mark_open(member, root, open_nodes, merged=True)
    for sub in subschemas(node):
        if id(sub) not in open_nodes:
            _mark_open(sub, root, open_nodes, merged=False)


def _adopt_part_names(node: Any, depth: int = 0) -> None:
    """Give an object that is combined with other schemas (`allOf`/`anyOf`/`oneOf`,
    `if`/`then`/`else`) the names its parts declare or require as properties of its own
    (`{}`: the part that names one still says what it holds), so that it can be closed to
    them. Left open, a 270M model invents keys (`"subObject": [...]`) and records run to
    thousands of characters. Only where every part speaks of names alone (no `$ref`,
    `patternProperties`, `additionalProperties`...; see _parts_name_only_own_properties):
    then closing forbids nothing a record could need, and a record is still valid."""
    if not isinstance(node, dict) or depth > 64:
        return
    for sub in subschemas(node):
        _adopt_part_names(sub, depth + 1)
    own = node.get("properties")
    if not isinstance(own, dict) or not own or isinstance(node.get("$ref"), str):
        return
    names = _part_names(node, adopting=True)
    if names:
        for name in names - own.keys():
            own[name] = {}


def _part_names(node: dict[str, Any], *, adopting: bool = False) -> set[str] | None:
    """The property names the parts combined with `node` (`allOf`/`anyOf`/`oneOf` members,
    `if`/`then`/`else`, `not`) declare or require; None when a part does more than name
    properties. `adopting` (the names become the object's own): a `not`, a
    `minProperties` or a node-level `dependentSchemas` also gives None."""
    if adopting and ("not" in node or "dependentSchemas" in node):
        return None
    parts: list[Any] = [node.get(k) for k in ("if", "then", "else", "not") if k in node]
    for key in ("allOf", "anyOf", "oneOf"):
        parts.extend(node.get(key) or [])
    refused = _NAME_ONLY_REFUSED | ({"minProperties", "not"} if adopting else set())
    names: set[str] = set()
    seen = 0
    while parts:
        part = parts.pop()
        seen += 1
        if isinstance(part, bool):
            continue
        if not isinstance(part, dict) or seen > 64 or "$ref" in part or refused & part.keys():
            return None
        required = part.get("required") or []
        names |= set(part.get("properties") or {}) | {r for r in required if isinstance(r, str)}
        parts.extend(part.get(k) for k in ("if", "then", "else") if k in part)
        for key in ("allOf", "anyOf", "oneOf"):
            parts.extend(part.get(key) or [])
    return names


_NAME_ONLY_REFUSED = {"additionalProperties", "patternProperties", "propertyNames", "dependentSchemas"}


def _parts_name_only_own_properties(node: dict[str, Any], root: dict[str, Any]) -> bool:
    """True when every schema combined with `node` (its `allOf`/`anyOf`/`oneOf` members,
    `if`/`then`/`else`, `$ref`) speaks only of properties `node` itself declares: closing
    `node` to its own properties then forbids nothing the combination allows."""
    own = node.get("properties")
    if not isinstance(own, dict) or not own:
        return False
    if isinstance(node.get("$ref"), str) or "dependentSchemas" in node:
        return False
    names = _part_names(node)
    return names is not None and names <= own.keys()


_OBJECT_KEYS = {"properties", "required", "additionalProperties", "patternProperties"}
_COMBINING_KEYS = {"$ref", "allOf", "anyOf", "oneOf", "not", "if", "enum", "const"}
# Formats decoded as a pattern: the ones llguidance has no grammar for, and the ones whose
# grammar lets a small model wander while staying valid (emails made of file paths, 60-digit
# fractions of a second, 60-digit durations, bare "https://"). Each pattern is an everyday,
# bounded subset of the format: every value it allows is valid, and the record ends.
_LABEL = r"[a-z0-9]{1,20}(-[a-z0-9]{1,10})?"
_HOST = rf"{_LABEL}(\.{_LABEL}){{0,2}}\.[a-z]{{2,6}}"
_PATH = r"(/[A-Za-z0-9_.~\-]{1,24}){0,4}"
_URL = rf"https?://{_HOST}{_PATH}(\?[a-z_]{{1,12}}=[A-Za-z0-9_\-]{{1,16}})?"
_DATE = (r"[12][0-9]{3}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)"
         r"|(0[13578]|1[02])-31)")
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+\-]([01][0-9]|2[0-3]):[0-5][0-9])"
FORMAT_PATTERNS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f"{_DATE}T{_TIME}",
    "duration": r"P([0-9]{1,3}[YMWD]|[0-9]{1,2}Y[0-9]{1,2}M|[0-9]{1,3}DT[0-9]{1,2}H"
                r"|T[0-9]{1,3}[HMS]|T[0-9]{1,2}H[0-9]{1,2}M)",
    "email": r"[a-z0-9]{1,20}([._\-][a-z0-9]{1,12}){0,2}@" + _HOST,
    "idn-email": r"[a-z0-9]{1,20}([._\-][a-z0-9]{1,12}){0,2}@" + _HOST,
    "hostname": _HOST,
    "idn-hostname": _HOST,
    "uri": _URL,
    "iri": _URL,
    "uri-reference": f"{_URL}|{_PATH}",
    "iri-reference": f"{_URL}|{_PATH}",
    "uri-template": rf"https?://{_HOST}(/([A-Za-z0-9_\-]{{1,16}}|\{{[a-z_]{{1,12}}\}})){{0,4}}",
    "regex": r"\^?[A-Za-z0-9 _\-]{1,40}\$?",
    "json-pointer": r"(/[A-Za-z0-9_\-]{1,20}){0,5}",
    "relative-json-pointer": r"[0-9](/[A-Za-z0-9_\-]{1,20}){0,5}",
}


def _anchored(pattern: str) -> str:
    if pattern.startswith("^") and pattern.endswith("$"):
        return pattern
    return f"^(?:{pattern})$"


def _enum_without_excluded(node: dict[str, Any]) -> None:
    """`enum` minus what a sibling `not: {const}` / `not: {enum}` excludes: the grammar
    cannot enforce `not`, so otherwise the model keeps writing the excluded value and every
    such record is rejected after decoding."""
    excluded = node.get("not")
    if not isinstance(node.get("enum"), list) or not isinstance(excluded, dict):
        return
    if set(excluded) == {"const"}:
        banned = [excluded["const"]]
    elif set(excluded) == {"enum"} and isinstance(excluded["enum"], list):
        banned = excluded["enum"]
    else:
        return
    kept = [v for v in node["enum"] if not any(_same_json(v, b) for b in banned)]
    if kept:
        node["enum"] = kept


def _same_json(a: Any, b: Any) -> bool:
    """JSON Schema's equality (as `enum` and `const` compare): numbers by value, so 1 is
    1.0, but a boolean is never a number; objects whatever their key order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _property_names_as_pattern(node: dict[str, Any]) -> None:
    """`propertyNames: {pattern}` on an object with no named properties, as the equivalent
    `patternProperties` the grammar can enforce (it cannot enforce `propertyNames`)."""
    names = node.get("propertyNames")
    if (not isinstance(names, dict) or not isinstance(names.get("pattern"), str)
            or node.get("properties") or "patternProperties" in node
            or node.get("additionalProperties") is False):
        return
    values = node.get("additionalProperties", True)
    node["patternProperties"] = {names["pattern"]: values if isinstance(values, dict) else {}}
    node["additionalProperties"] = False


def _bound(node: Any, open_nodes: set[int], close_objects: bool, max_string: int) -> None:
    if not isinstance(node, dict):
        return
    if node.get("format") in FORMAT_PATTERNS and "pattern" not in node:
        node["pattern"] = _anchored(FORMAT_PATTERNS[node.pop("format")])
    _enum_without_excluded(node)
    _property_names_as_pattern(node)
    if isinstance(node.get("patternProperties"), dict):
        # A key need only *contain* a match of its pattern, so the grammar lets the model
        # write a long key until one turns up; a key that *is* a match is valid and ends.
        node["patternProperties"] = {_anchored(p): sub for p, sub in
                                     node["patternProperties"].items()}
    if "type" not in node and _OBJECT_KEYS & node.keys() and not _COMBINING_KEYS & node.keys():
        # `properties` without `type` lets any number or string pass, but the user means an
        # object; decoding one is still valid.
        node["type"] = "object"
    kinds = node.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    closable = "object" in kinds or (kinds == {None} and "properties" in node)
    if (close_objects and closable and "additionalProperties" not in node and node.get("properties")
            and "patternProperties" not in node and id(node) not in open_nodes):
        node["additionalProperties"] = False
    if "string" in kinds and not ({"enum", "const", "format", "pattern"} & node.keys()):
        limit = node.get("maxLength", max_string)
        node["maxLength"] = max(min(limit, STRING_CAP), node.get("minLength", 0))
    elif "string" in kinds and "pattern" in node:
        node["maxLength"] = max(min(node.get("maxLength", PATTERN_STRING), STRING_CAP),
                                node.get("minLength", 0))
    elif "string" in kinds and "format" in node:
        node["maxLength"] = max(min(node.get("maxLength", FORMAT_STRING), STRING_CAP),
                                node.get("minLength", 0))
    if "integer" in kinds:
        lo = node.get("minimum", node.get("exclusiveMinimum"))
        hi = node.get("maximum", node.get("exclusiveMaximum"))
        if lo is None and hi is None:
            node["minimum"], node["maximum"] = -INT_SPAN, INT_SPAN
        elif hi is None:
            node["maximum"] = lo + INT_SPAN
        elif lo is None:
            node["minimum"] = hi - INT_SPAN
    if "array" in kinds and isinstance(node.get("contains"), dict) and "prefixItems" not in node:
        # The grammar cannot count matches, but it can make the first items match: decode
        # `contains` as that many leading items of `items` and `contains` both.
        wanted = node.get("minContains", 1)
        if isinstance(wanted, int) and 1 <= wanted <= MAX_ITEMS:
            item = node.get("items", {})
            node["prefixItems"] = [{"allOf": [copy.deepcopy(item), copy.deepcopy(node["contains"])]}
                                   for _ in range(wanted)]
            node["minItems"] = max(node.get("minItems", 0), wanted)
            for key in ("contains", "minContains"):
                node.pop(key, None)
    if "array" in kinds and "maxItems" not in node:
        node["maxItems"] = max(MAX_ITEMS, node.get("minItems", 0))
    for sub in subschemas(node):
        _bound(sub, open_nodes, close_objects, max_string)


def property_names(schema: Any) -> set[str]:
    """Every property name anywhere in a JSON Schema (nested objects, arrays, $defs)."""
    names: set[str] = set()
    if isinstance(schema, dict):
        names.update(k for k in schema.get("properties") or {} if isinstance(k, str))
        for value in schema.values():
            names |= property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= property_names(item)
    return names


def subschemas(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas nested one level inside `node` (properties, $defs, anyOf, items...)."""
    out: list[Any] = []
    for key in SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            out.extend(node[key].values())
    for key in SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            out.extend(node[key])
    out.extend(node.get(key) for key in SCHEMA_ONE)
    return [sub for sub in out if isinstance(sub, dict)]

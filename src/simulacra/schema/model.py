"""`Schema`: the one internal form of a data shape, whether it came from pydantic or JSON Schema.

It keeps the user's JSON Schema (what records must satisfy), a bounded copy for decoding
(so a constrained model cannot run away), the fields for the prompt, and a validator.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from simulacra.errors import SchemaError

# Decoding bounds. A record still satisfies the user's schema; these only keep the decoder
# from looping inside a string or a number until the token limit (measured on Gemma 270M).
MAX_STRING = 64          # default maxLength when the schema sets none
STRING_CAP = 400         # any larger maxLength (e.g. 32767 meaning "no limit") is decoded as this
MAX_ITEMS = 5            # default maxItems
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


@dataclass
class Schema:
    """A data shape: `json_schema` is the contract, `model` the pydantic class if there is one."""

    name: str
    json_schema: dict[str, Any]
    model: type[BaseModel] | None = None
    _validator: Any = field(default=None, repr=False)

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
    def from_json_schema(cls, data: dict[str, Any], name: str | None = None, *,
                         check: bool = True) -> Schema:
        try:
            validator_cls = jsonschema.validators.validator_for(data)
            validator_cls.check_schema(data)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise SchemaError(f"invalid JSON Schema at {where}: {exc.message}") from None
        if data.get("type") != "object" or not isinstance(data.get("properties"), dict):
            raise SchemaError(
                "a JSON Schema for records must have \"type\": \"object\" and \"properties\""
            )
        validator = validator_cls(data, format_checker=validator_cls.FORMAT_CHECKER)
        schema = cls(name=name or data.get("title") or "Record", json_schema=data,
                     _validator=validator)
        return cls._checked(schema) if check else schema

    @staticmethod
    def _checked(schema: Schema) -> Schema:
        from simulacra.schema.support import check_support

        check_support(schema.json_schema).raise_if_refused()
        return schema

    # -- what the prompt needs ---------------------------------------------------------
    @property
    def fields(self) -> list[Field]:
        required = set(self.json_schema.get("required", []))
        out = []
        for name, sub in self.json_schema.get("properties", {}).items():
            resolved = self.resolve(sub)
            out.append(Field(name, describe_type(self, resolved),
                             resolved.get("description", sub.get("description", "")),
                             name in required))
        return out

    @property
    def description(self) -> str:
        return self.json_schema.get("description", "") or ""

    def resolve(self, sub: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (`#/$defs/X` or `#/definitions/X`)."""
        seen = 0
        while isinstance(sub, dict) and "$ref" in sub and seen < 32:
            ref = sub["$ref"]
            if not ref.startswith("#/"):
                raise SchemaError(f"only local $ref are supported, got {ref!r}")
            target = ref_target(self.json_schema, ref)
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
        if isinstance(data, str | bytes):
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
    def decoding_schema(self) -> dict[str, Any]:
        """The JSON Schema handed to the constrained decoder: the user's, with bounds added."""
        return bound_for_decoding(self.json_schema)


def ref_target(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The subschema a local `$ref` (`#/$defs/X`) points at in `root`; {} if it is missing."""
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def describe_type(schema: Schema, sub: dict[str, Any]) -> str:
    """A short, human type label for the prompt: `integer`, `list of string`, `one of "a", "b"`."""
    sub = schema.resolve(sub)
    if "const" in sub:
        return f"always {json.dumps(sub['const'])}"
    if "enum" in sub:
        return "one of " + ", ".join(json.dumps(v) for v in sub["enum"])
    for key in ("anyOf", "oneOf"):
        if key in sub:
            parts = [describe_type(schema, s) for s in sub[key]]
            return " or ".join(p for p in parts if p)
    kind = sub.get("type", "")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        label = f"list of {describe_type(schema, sub.get('items', {})) or 'any'}"
    elif kind == "string" and "format" in sub:
        label = f"string ({sub['format']})"
    else:
        label = kind
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


def bound_for_decoding(js: dict[str, Any]) -> dict[str, Any]:
    """Copy `js` with every string, integer and array bounded and objects closed."""
    out = copy.deepcopy(js)
    _bound(out)
    return out


def _bound(node: Any) -> None:
    if not isinstance(node, dict):
        return
    kinds = node.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if "object" in kinds and "additionalProperties" not in node and "properties" in node:
        node["additionalProperties"] = False
    if "string" in kinds and not ({"enum", "const", "format", "pattern"} & node.keys()):
        limit = node.get("maxLength", MAX_STRING)
        node["maxLength"] = max(min(limit, STRING_CAP), node.get("minLength", 0))
    elif "string" in kinds and "pattern" in node and "maxLength" in node:
        node["maxLength"] = max(min(node["maxLength"], STRING_CAP), node.get("minLength", 0))
    if "integer" in kinds:
        lo = node.get("minimum", node.get("exclusiveMinimum"))
        hi = node.get("maximum", node.get("exclusiveMaximum"))
        if lo is None and hi is None:
            node["minimum"], node["maximum"] = -INT_SPAN, INT_SPAN
        elif hi is None:
            node["maximum"] = lo + INT_SPAN
        elif lo is None:
            node["minimum"] = hi - INT_SPAN
    if "array" in kinds and "maxItems" not in node:
        node["maxItems"] = max(MAX_ITEMS, node.get("minItems", 0))
    for sub in subschemas(node):
        _bound(sub)


# Where JSON Schema nests subschemas.
SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else",
                 "propertyNames", "unevaluatedProperties", "unevaluatedItems")


def subschemas(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas nested one level inside `node` (properties, $defs, anyOf, items...)."""
    out: list[Any] = []
    for key in SUBSCHEMA_MAPS:
        out.extend((node.get(key) or {}).values())
    for key in SUBSCHEMA_LISTS:
        out.extend(node.get(key) or [])
    out.extend(node.get(key) for key in SUBSCHEMA_ONE)
    return [sub for sub in out if isinstance(sub, dict)]

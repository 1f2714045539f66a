"""Preflight: how simulacra handles every keyword of a schema, before anything runs.

Each keyword is *enforced* (the constrained decoder cannot emit a violation), *checked*
(validated after decoding; a failing record is retried), an *annotation* (used in the prompt
or ignored), or *refused* (the run stops up front with the keyword's path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulacra.errors import UnsupportedSchemaError

ENFORCED = "enforced"
CHECKED = "checked"
ANNOTATION = "annotation"
REFUSED = "refused"

_ENFORCED = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "enum", "const", "anyOf", "$ref", "$defs", "definitions",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "pattern",
}
_CHECKED = {"oneOf", "allOf", "uniqueItems", "multipleOf", "minProperties", "maxProperties"}
_ANNOTATIONS = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "discriminator", "contentMediaType",
}
_REFUSED = {
    "not": "negation cannot be decoded; express the allowed values instead",
    "if": "conditional schemas are not supported; use anyOf of the cases",
    "then": "conditional schemas are not supported; use anyOf of the cases",
    "else": "conditional schemas are not supported; use anyOf of the cases",
    "dependentSchemas": "dependent schemas are not supported",
    "dependentRequired": "dependentRequired is not supported; use a model_validator",
    "dependencies": "dependencies is not supported; use a model_validator",
    "patternProperties": "patternProperties is not supported; list the properties",
    "propertyNames": "propertyNames is not supported",
    "unevaluatedProperties": "unevaluatedProperties is not supported; use additionalProperties",
    "unevaluatedItems": "unevaluatedItems is not supported",
    "contains": "contains is not supported",
    "minContains": "minContains is not supported",
    "maxContains": "maxContains is not supported",
    "$dynamicRef": "dynamic references are not supported",
    "$recursiveRef": "recursive references are not supported",
}
# Formats the decoder's grammar knows; any other format is validated after decoding.
ENFORCED_FORMATS = {"date", "date-time", "time", "uuid", "email"}

_MAPS = ("properties", "$defs", "definitions")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_ONE = ("items", "additionalProperties")


@dataclass(frozen=True)
class Handling:
    path: str
    keyword: str
    how: str
    note: str = ""


@dataclass
class SupportReport:
    """Every keyword of a schema with how it is handled (see the module docstring)."""

    entries: list[Handling] = field(default_factory=list)

    @property
    def refused(self) -> list[Handling]:
        return [e for e in self.entries if e.how == REFUSED]

    def raise_if_refused(self) -> None:
        if self.refused:
            first = self.refused[0]
            more = f" (and {len(self.refused) - 1} more)" if len(self.refused) > 1 else ""
            raise UnsupportedSchemaError(
                f"unsupported schema feature '{first.keyword}' at {first.path}: {first.note}{more}",
                path=first.path,
            )

    def by_field(self) -> dict[str, str]:
        """Top-level field -> weakest handling among its keywords (refused < checked < enforced)."""
        rank = {REFUSED: 0, CHECKED: 1, ENFORCED: 2, ANNOTATION: 3}
        out: dict[str, str] = {}
        for e in self.entries:
            parts = e.path.split(".")
            if len(parts) < 2 or parts[0] != "properties" or e.how == ANNOTATION:
                continue
            name = parts[1]
            if name not in out or rank[e.how] < rank[out[name]]:
                out[name] = e.how
        return out

    def as_dicts(self) -> list[dict[str, str]]:
        return [vars(e) for e in self.entries]


def check_support(js: dict[str, Any]) -> SupportReport:
    """Walk a JSON Schema and classify every keyword, with its dotted path."""
    report = SupportReport()
    _walk(js, "", report)
    return report


def _walk(node: Any, path: str, report: SupportReport) -> None:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = f"{path}.{key}" if path else key
        report.entries.append(_classify(key, value, here))
        if key in _MAPS and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, f"{here}.{name}", report)
        elif key in _LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                _walk(sub, f"{here}.{i}", report)
        elif key in _ONE and isinstance(value, dict):
            _walk(value, here, report)


def _classify(key: str, value: Any, path: str) -> Handling:
    if key == "format":
        if value in ENFORCED_FORMATS:
            return Handling(path, key, ENFORCED, f"format {value}")
        return Handling(path, key, CHECKED, f"format {value} is validated after decoding")
    if key == "allOf" and isinstance(value, list) and len(value) == 1:
        return Handling(path, key, ENFORCED, "single-entry allOf is merged")
    if key in _ENFORCED:
        return Handling(path, key, ENFORCED)
    if key in _CHECKED:
        return Handling(path, key, CHECKED, "validated after decoding; failing records are retried")
    if key in _ANNOTATIONS:
        note = "used in the prompt" if key in ("description", "title") else "ignored"
        return Handling(path, key, ANNOTATION, note)
    if key in _REFUSED:
        return Handling(path, key, REFUSED, _REFUSED[key])
    if key.startswith("x-"):
        return Handling(path, key, ANNOTATION, "extension keyword, ignored")
    return Handling(path, key, REFUSED, f"unknown keyword '{key}'; remove it or rename it x-{key}")


def support_table() -> str:
    """The keyword support table as Markdown; docs/schema-support.md is this, checked by a test."""
    lines = ["| keyword | handling | note |", "| --- | --- | --- |"]
    for key in sorted(_ENFORCED):
        lines.append(f"| `{key}` | {ENFORCED} | decoded under the grammar |")
    lines.append(f"| `format` ({', '.join(sorted(ENFORCED_FORMATS))}) | {ENFORCED} | "
                 "decoded under the grammar |")
    lines.append(f"| `format` (any other) | {CHECKED} | validated after decoding |")
    lines.append(f"| `allOf` with one entry | {ENFORCED} | merged |")
    for key in sorted(_CHECKED):
        lines.append(f"| `{key}` | {CHECKED} | validated after decoding; failing records are retried |")
    for key in sorted(_ANNOTATIONS):
        note = "used in the prompt" if key in ("description", "title") else "ignored"
        lines.append(f"| `{key}` | {ANNOTATION} | {note} |")
    lines.append(f"| `x-...` | {ANNOTATION} | extension keywords are ignored |")
    for key, note in sorted(_REFUSED.items()):
        lines.append(f"| `{key}` | {REFUSED} | {note} |")
    lines.append(f"| any other keyword | {REFUSED} | unknown keywords are refused, not ignored |")
    return "\n".join(lines) + "\n"

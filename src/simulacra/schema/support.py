"""Preflight: how simulacra handles every keyword of a schema, before anything runs.

Each keyword is *enforced* (the constrained decoder cannot emit a violation), *checked*
(validated after decoding against the user's schema; a failing record is retried), an
*annotation* (used in the prompt, or carried along), *ignored* (a keyword JSON Schema does not
define: a custom one or a misspelling; validators ignore it, and so does simulacra), or
*refused* (the schema has no valid instance, needs the network, or cannot be decoded at all).

The verdict comes from the same grammar compile the decoder runs (`schema.grammar`), so a
schema this report accepts is never refused later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulacra.errors import UnsupportedSchemaError
from simulacra.schema.dialect import SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_ONE, normalize
from simulacra.schema.model import FORMAT_PATTERNS

ENFORCED = "enforced"
CHECKED = "checked"
ANNOTATION = "annotation"
IGNORED = "ignored"
REFUSED = "refused"

# What llguidance's grammar enforces (some only in part: the compile says when it cannot).
_ENFORCED = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "enum", "const", "anyOf", "allOf", "oneOf", "$ref", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
    "pattern", "patternProperties", "minProperties", "maxProperties", "if", "then", "else",
}
# Enforced keywords whose decoding is not the keyword itself (see schema/conditionals.py).
_HOW_DECODED = {key: "decoded as anyOf [if + then, not-if + else]; not-if is stated for "
                "conditions on one property's values or presence, otherwise validated after "
                "decoding" for key in ("if", "then", "else")}
# Validated after decoding; a record that breaks one is retried.
_CHECKED = {
    "uniqueItems", "not", "dependentRequired", "dependentSchemas",
    "dependencies", "propertyNames", "contains", "minContains", "maxContains",
    "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef",
    "additionalItems", "contentSchema",
}
_ANNOTATIONS = {
    "title", "description", "default", "examples", "$schema", "$id", "id", "$comment",
    "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "$anchor",
    "$dynamicAnchor", "$recursiveAnchor", "$vocabulary", "$defs", "definitions",
}
_PROMPT = {"description", "examples"}   # (the root's `title` names the records too)
# Formats the grammar knows; any other format is validated after decoding.
ENFORCED_FORMATS = {"date", "date-time", "time", "duration", "email", "hostname", "ipv4", "ipv6",
                    "uuid", "uri"} | set(FORMAT_PATTERNS)


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
    dialect: str = "2020-12"

    @property
    def refused(self) -> list[Handling]:
        return [e for e in self.entries if e.how == REFUSED]

    @property
    def ignored(self) -> list[Handling]:
        return [e for e in self.entries if e.how == IGNORED]

    def raise_if_refused(self) -> None:
        if self.refused:
            first = self.refused[0]
            more = f" (and {len(self.refused) - 1} more)" if len(self.refused) > 1 else ""
            raise UnsupportedSchemaError(f"schema refused at {first.path}: {first.note}{more}",
                                         path=first.path)

    def by_field(self) -> dict[str, str]:
        """Top-level field -> weakest handling among its keywords (refused < checked < enforced)."""
        rank = {REFUSED: 0, CHECKED: 1, ENFORCED: 2}
        out: dict[str, str] = {}
        for e in self.entries:
            parts = e.path.split(".")
            if len(parts) < 2 or parts[0] != "properties" or e.how not in rank:
                continue
            name = parts[1]
            if name not in out or rank[e.how] < rank[out[name]]:
                out[name] = e.how
        return out

    def as_dicts(self) -> list[dict[str, str]]:
        return [vars(e) for e in self.entries]


def check_support(js: dict[str, Any] | bool) -> SupportReport:
    """Classify every keyword of `js` (with its dotted path), then compile the decoding
    grammar exactly as the decoder will, and refuse only what cannot run."""
    from simulacra.schema.grammar import compile_grammar
    from simulacra.schema.model import bound_for_decoding
    from simulacra.schema.satisfiable import unsatisfiable

    normalized = normalize(js)
    report = SupportReport(dialect=normalized.dialect)
    _walk(js, "", report)
    report.entries.extend(Handling(path, key, IGNORED, "not a JSON Schema keyword; ignored, as "
                                   "validators do") for path, key in normalized.ignored)
    problems = unsatisfiable(normalized.schema)
    for path, keyword, why in problems:
        report.entries.append(Handling(path, keyword, REFUSED, why))
    if problems:
        return report
    try:
        compiled = compile_grammar(bound_for_decoding(normalized.schema))
    except UnsupportedSchemaError as exc:
        report.entries.append(Handling("(root)", "grammar", REFUSED, str(exc)))
        return report
    _mark_unenforced(report, compiled.unenforced)
    return report


def _walk(node: Any, path: str, report: SupportReport) -> None:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = f"{path}.{key}" if path else key
        handling = _classify(key, value, here)
        if handling is not None:
            report.entries.append(handling)
        if key in SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, f"{here}.{name}", report)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                _walk(sub, f"{here}.{i}", report)
        elif key == "dependencies" and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, f"{here}.{name}", report)
        elif key == "items" and isinstance(value, list):
            for i, sub in enumerate(value):
                _walk(sub, f"{here}.{i}", report)
        elif key in SCHEMA_ONE:
            _walk(value, here, report)


def _classify(key: str, value: Any, path: str) -> Handling | None:
    if key == "format":
        if value in ENFORCED_FORMATS:
            return Handling(path, key, ENFORCED, f"format {value}")
        return Handling(path, key, CHECKED, f"format {value} is validated after decoding")
    if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
        return Handling(path, key, REFUSED, f"remote $ref {value!r} needs the network; save a "
                        "local copy and put it under $defs with a local \"#/$defs/...\" $ref")
    if key in _ENFORCED:
        return Handling(path, key, ENFORCED, _HOW_DECODED.get(key, ""))
    if key in _CHECKED:
        return Handling(path, key, CHECKED, "validated after decoding; failing records are retried")
    if key in _ANNOTATIONS:
        return Handling(path, key, ANNOTATION, "used in the prompt" if key in _PROMPT else "")
    if key.startswith("x-"):
        return Handling(path, key, ANNOTATION, "extension keyword")
    return None   # unknown: listed as ignored by `check_support`, from the normalizer


def _mark_unenforced(report: SupportReport, unenforced: tuple[str, ...]) -> None:
    """Keywords the grammar compile could not enforce become *checked*, with its reason."""
    if not unenforced:
        return
    reason = "; ".join(unenforced)
    for i, entry in enumerate(report.entries):
        named = entry.how == ENFORCED and (
            f'"{entry.keyword}"' in reason                      # Unimplemented keys: ["not"]
            or f"{entry.path} " in reason or f"{entry.path}:" in reason   # parts removed
            or (entry.keyword == "oneOf" and "oneOf" in reason)
            or (entry.keyword in ("minProperties", "maxProperties") and "Properties" in reason))
        if named:
            report.entries[i] = Handling(entry.path, entry.keyword, CHECKED,
                                         f"not enforced by the grammar ({reason}); validated "
                                         "after decoding")


def support_table() -> str:
    """The keyword support table as Markdown; docs/schema-support.md holds it, checked by a test."""
    lines = ["| keyword | handling | note |", "| --- | --- | --- |"]
    for key in sorted(_ENFORCED):
        lines.append(f"| `{key}` | {ENFORCED} | {_HOW_DECODED.get(key, 'decoded under the grammar')} |")
    lines.append(f"| `format` ({', '.join(sorted(ENFORCED_FORMATS))}) | {ENFORCED} | "
                 "decoded under the grammar |")
    lines.append(f"| `format` (any other) | {CHECKED} | validated after decoding |")
    for key in sorted(_CHECKED):
        lines.append(f"| `{key}` | {CHECKED} | validated after decoding; failing records are retried |")
    for key in sorted(_ANNOTATIONS):
        note = "used in the prompt" if key in _PROMPT else "carried along"
        lines.append(f"| `{key}` | {ANNOTATION} | {note} |")
    lines.append(f"| `x-...` | {ANNOTATION} | extension keywords |")
    lines.append(f"| any other keyword | {IGNORED} | not JSON Schema (custom or misspelt): "
                 "listed by `check`, ignored as validators ignore it |")
    lines.append(f"| remote `$ref` | {REFUSED} | needs the network: save a local copy |")
    lines.append(f"| a schema with no valid instance | {REFUSED} | e.g. `minimum` above `maximum` |")
    return "\n".join(lines) + "\n"

"""How a record is written while it is decoded: as a JSON object, or, when asked for
(`Generator(..., rows=True)`, `simulacra generate --rows`), as a row.

A constrained decoder feeds every token of a record through the model, the ones the grammar
forces as well as the ones it samples. Written as a JSON object, about 30 of a MedicalBilling
record's 72 tokens are keys, quotes and colons the grammar forces; the model has read the
field names in the prompt and gains nothing from reading them again for every record.
Written as a row, a JSON array of the values in field order with the names said once in the
prompt, the same record is about 40 tokens:

    {"patient_id": 123456, "patient_name": "John Doe", "diagnosis_code": "J20.9", ...}
    [123456, "John Doe", "J20.9", "99203", 500.0, 350.0]

Measured on the embedded model, 48 records each way in one run: 1.4x the records/s, all
valid and distinct in both forms (bench/throughput.py with the engine: 15.8x the baseline
as objects, 20.4x as rows). Not the default: the tutorial's round trip (bench/roundtrip.py,
20 records each way, back to back) scored lower on rows (record exact 0.70 -> 0.45,
diagnosis code 0.90 -> 0.75, claim 0.80 -> 0.65; the name 0.90 -> 0.95). Without the space
after the comma a row is 4 tokens shorter, but the decoder then meets tokens that close one
value and open the next (`","`) and the run was slower (11.6x), so rows keep it. The row is
turned back into the object before anything checks it, so validation, the gate, sinks and
the ledger's records are the object's; only the ledger's raw text shows the row.

Only a plain object becomes a row: 2 to MAX_ROW_FIELDS properties (past that a position is
harder to keep than a name), no extra or pattern properties, no conditionals or property
counts at the top level (they are written in terms of keys), and at most half its fields
free text. A free-text value leans on its key: as rows, a customer profile's names and a
product review's products drifted (12.7% and 28.8% of tries implausible, 1.5% and 7.8% as
objects; MedicalBilling, three of six fields free text, 2.3% against 1.9%). The run also
goes back to objects if its first rows come out implausible, and writes rows only when it
has examples to show one (engine/run.py): zero-shot, the model wrote prose into the row
("] My favorite colour is "). An optional field that the schema does not let be null is
written null in the row when absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_ROW_FIELDS = 12
# Top-level keywords a row keeps the meaning of; any other (if/then, dependentRequired,
# minProperties, patternProperties...) keeps the object form.
_ROW_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "title",
                           "description", "$defs", "definitions", "$schema", "$id", "$comment",
                           "examples", "default"})


@dataclass(frozen=True)
class RowSurface:
    """A record written as a row: `names` in order; `absent_as_null`: optional fields that
    cannot be null, written null when left out."""

    names: tuple[str, ...]
    absent_as_null: frozenset[str]

    @classmethod
    def for_schema(cls, decoding: Any, free_text: list[tuple[str, ...]] = ()
                   ) -> RowSurface | None:
        """The row form of a decoding schema, or None when it must stay an object.
        `free_text`: the paths of its free-text fields (engine/diversity.py)."""
        if not isinstance(decoding, dict) or decoding.get("type") != "object":
            return None
        properties = decoding.get("properties")
        if not isinstance(properties, dict) or not 2 <= len(properties) <= MAX_ROW_FIELDS:
            return None
        if set(decoding) - _ROW_KEYWORDS or decoding.get("additionalProperties", False):
            return None
        if '"#/properties' in json.dumps(decoding):   # a reference into the object's keys
            return None
        if 2 * len({path[0] for path in free_text if path}) > len(properties):
            return None
        required = set(decoding.get("required", ()))
        return cls(tuple(properties), frozenset(
            name for name, sub in properties.items()
            if name not in required and not _allows_null(sub)))

    def schema(self, decoding: dict[str, Any]) -> dict[str, Any]:
        """The array schema for `decoding` (which may pin sampled fields with `const`)."""
        items = []
        for name in self.names:
            sub = decoding["properties"][name]
            items.append({"anyOf": [sub, {"type": "null"}]} if name in self.absent_as_null
                         else sub)
        row: dict[str, Any] = {"type": "array", "prefixItems": items, "items": False,
                               "minItems": len(items), "maxItems": len(items)}
        for key in ("$defs", "definitions"):
            if key in decoding:
                row[key] = decoding[key]
        return row

    def record(self, row: Any) -> Any:
        """The object a row stands for (anything else is returned as it is, for the
        validator to reject in its own words)."""
        if not isinstance(row, list) or len(row) != len(self.names):
            return row
        return {name: value for name, value in zip(self.names, row, strict=True)
                if not (value is None and name in self.absent_as_null)}

    def render(self, record: dict[str, Any]) -> str:
        """An example record as the model should write one."""
        return json.dumps([record.get(name) for name in self.names], ensure_ascii=False)

    def instruction(self) -> str:
        return ("One JSON array per line: the values of " + ", ".join(self.names)
                + ", in this order.")


def _allows_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return schema is True
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "const" in schema:
        return schema["const"] is None
    if "enum" in schema:
        return None in schema["enum"]
    return any(_allows_null(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))

"""Parquet: an Arrow schema derived from the JSON Schema, written in row groups as records come."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 256  # records buffered before a row group is written


def arrow_type(node: dict[str, Any], root: dict[str, Any]) -> pa.DataType:
    """The Arrow type for a JSON Schema node; anything irregular becomes JSON text."""
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target.get(part, {})
        node = target
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        non_null = [o for o in options if o.get("type") != "null"]
        return arrow_type(non_null[0], root) if len(non_null) == 1 else pa.string()
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        if all(isinstance(v, str) for v in values):
            return pa.string()
    return {
        "integer": pa.int64(),
        "number": pa.float64(),
        "boolean": pa.bool_(),
        "string": pa.string(),
    }.get(kind) or _composite(kind, node, root)


def _composite(kind: Any, node: dict[str, Any], root: dict[str, Any]) -> pa.DataType:
    if kind == "array":
        return pa.list_(arrow_type(node.get("items", {}), root))
    if kind == "object" and node.get("properties"):
        return pa.struct([(k, arrow_type(v, root)) for k, v in node["properties"].items()])
    return pa.string()  # free-form: stored as JSON text


def arrow_schema(json_schema: dict[str, Any]) -> pa.Schema:
    return pa.schema([(name, arrow_type(sub, json_schema))
                      for name, sub in json_schema.get("properties", {}).items()])


class ParquetSink:
    def __init__(self, path: Path, json_schema: dict[str, Any]) -> None:
        self._path = path
        self._schema = arrow_schema(json_schema)
        self._rows: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None

    def write(self, record: dict[str, Any]) -> None:
        self._rows.append(_fit(record, self._schema))
        if len(self._rows) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, self._schema)
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()


def _fit(record: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Turn values Arrow would reject (free-form JSON in a string column) into JSON text."""
    import json

    out = {}
    for f in schema:
        value = record.get(f.name)
        if pa.types.is_string(f.type) and value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        out[f.name] = value
    return out

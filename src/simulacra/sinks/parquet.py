"""Parquet: an Arrow schema derived from the JSON Schema, written in row groups as records come."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simulacra.schema.model import ref_target

ROW_GROUP = 256  # records buffered before a row group is written


def arrow_type(node: dict[str, Any], root: dict[str, Any]) -> pa.DataType:
    """The Arrow type for a JSON Schema node; anything irregular becomes JSON text."""
    while "$ref" in node:
        node = ref_target(root, node["$ref"])
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


def arrow_table(records: list[dict[str, Any]], json_schema: dict[str, Any]) -> pa.Table:
    schema = arrow_schema(json_schema)
    return pa.Table.from_pylist([_fit(r, schema) for r in records], schema=schema)


def parts_dir(path: Path) -> Path:
    """Where a Parquet output keeps its parts until the run closes it: `out.parquet.parts/`."""
    return path.with_name(path.name + ".parts")


class ParquetSink:
    """A Parquet file is only readable once its footer is written, so a run cannot append to
    one as it goes. Instead every row group becomes its own small Parquet file in
    `out.parquet.parts/`, written hidden and renamed into place (a part is whole or absent),
    and `on_durable` is called after each one (the checkpoint then lists those records).
    `close` merges the parts, one row group each, into `out.parquet` (again by rename) and
    removes them; a resumed run first turns that file back into part 0."""

    def __init__(self, path: Path, json_schema: dict[str, Any], *,
                 on_durable: Callable[[], None] | None = None) -> None:
        self._path = path
        self._parts = parts_dir(path)
        self._schema = arrow_schema(json_schema)
        self._rows: list[dict[str, Any]] = []
        self._on_durable = on_durable
        self._parts.mkdir(exist_ok=True)
        self._next = len(part_files(self._parts))

    def write(self, record: dict[str, Any]) -> None:
        # A full part is written when the next record comes (or at close), so the caller has
        # noted every record of the part (checkpoint.record) before `on_durable` fires.
        if len(self._rows) >= ROW_GROUP:
            self._flush()
        self._rows.append(_fit(record, self._schema))

    def _flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self._schema)
        write_whole(table, self._parts / f"part-{self._next:06d}.parquet")
        self._next += 1
        self._rows = []
        if self._on_durable is not None:
            self._on_durable()

    def close(self) -> None:
        self._flush()
        with pq.ParquetWriter(hidden(self._path), self._schema) as writer:
            for part in part_files(self._parts):
                writer.write_table(pq.read_table(part, schema=self._schema))
        os.replace(hidden(self._path), self._path)
        shutil.rmtree(self._parts)


def part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("part-*.parquet"))


def hidden(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_whole(table: pa.Table, path: Path) -> None:
    """Write `table` to a hidden file and rename it to `path`: readers never see half a file."""
    pq.write_table(table, hidden(path))
    os.replace(hidden(path), path)


def reopen_parts(path: Path, keep: int) -> list[dict[str, Any]]:
    """Before a resumed run: the parts (or the merged output, turned back into part 0) cut to
    their first `keep` records, which are returned. A part renamed into place just before a
    kill, whose records the checkpoint never listed, is cut away."""
    parts = parts_dir(path)
    parts.mkdir(exist_ok=True)
    for stale in parts.glob(".*"):  # a half-written part
        stale.unlink()
    if path.exists():
        if part_files(parts):  # killed between the merge's rename and the parts' removal
            path.unlink()
        else:
            os.replace(path, parts / "part-000000.parquet")
    kept: list[dict[str, Any]] = []
    for part in part_files(parts):
        room = keep - len(kept)
        table = pq.read_table(part)
        if room <= 0:
            part.unlink()
        elif table.num_rows > room:
            table = table.slice(0, room)
            write_whole(table, part)
        kept.extend(table.to_pylist()[:max(room, 0)])
    return kept


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

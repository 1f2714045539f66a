"""Reading rows from data files (JSONL, CSV, Parquet) with one-line errors naming file and line.

One reader for every input the tool takes: example records, seed-data columns, private rows,
data to report on, and the CLI's JSONL inputs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulacra.errors import UsageError

SUFFIXES = (".jsonl", ".csv", ".parquet")


def read_jsonl(path: Path, what: str = "input file") -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-empty line; a bad line stops with its number."""
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; expected JSON Lines") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number} is not valid JSON ({exc.msg}); expected one JSON "
                             "value per line") from None


def read_rows(path: Path, what: str = "data file") -> list[dict[str, Any]]:
    """Every row of a JSONL, CSV or Parquet file, as dicts."""
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for number, row in read_jsonl(path, what):
            if not isinstance(row, dict):
                raise UsageError(f"{path}:{number} must be a JSON object, one record per line")
            rows.append(row)
        return rows
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise UsageError(f"{path}: data files must be {', '.join(SUFFIXES)}, not {path.suffix or path.name}")

"""CSV: one column per top-level field; nested objects and lists are JSON text in their cell."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO


class CsvSink:
    def __init__(self, handle: TextIO, json_schema: dict[str, Any] | None, *,
                 header_written: bool = False) -> None:
        self._handle = handle
        self._columns: list[str] | None = list((json_schema or {}).get("properties", {})) or None
        self._writer: csv.DictWriter | None = None
        self._header_written = header_written  # appending to a resumed file

    def write(self, record: dict[str, Any]) -> None:
        if self._writer is None:
            self._columns = self._columns or list(record)
            self._writer = csv.DictWriter(self._handle, fieldnames=self._columns,
                                          extrasaction="ignore")
            if not self._header_written:
                self._writer.writeheader()
        row = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
               for k, v in record.items()}
        self._writer.writerow(row)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

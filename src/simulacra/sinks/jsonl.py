"""JSON Lines: one record per line, flushed per record so a killed run keeps every full line."""

from __future__ import annotations

import json
from typing import Any, TextIO


class JsonlSink:
    def __init__(self, handle: TextIO, *, owned: bool = False) -> None:
        self._handle = handle
        self._owned = owned

    def write(self, record: dict[str, Any]) -> None:
        # One write call per line, flushed at once: a reader (or a run killed right after)
        # sees whole lines only.
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._owned:
            self._handle.close()
        else:
            self._handle.flush()

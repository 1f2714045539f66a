"""Reading JSONL inputs for the CLI, with one-line errors that name the file and line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simulacra.rows import read_jsonl

__all__ = ["chunks", "read_jsonl"]


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

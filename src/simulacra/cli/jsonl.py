"""Reading JSONL inputs for the CLI, with one-line errors that name the file and line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulacra.errors import UsageError
from simulacra.rows import read_jsonl

__all__ = ["chunks", "input_fingerprint", "read_jsonl", "refuse_same_file"]


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def refuse_same_file(source: Path, output: str | None) -> None:
    """Writing to the file being read would destroy the input before it is read."""
    if output is not None and Path(output).resolve() == Path(source).resolve():
        raise UsageError(f"-o {output} is the input file; write the output to another file")


def input_fingerprint(items: list[Any]) -> str:
    """A short hash of a command's inputs: the same inputs resume, others are another job."""
    text = json.dumps(items, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

"""Pick a writer by file extension; refuse to clobber an existing file unless asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from simulacra.errors import UsageError


class Sink(Protocol):
    """Writes records one at a time; `close` makes the file complete (Parquet footer)."""

    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


SUFFIXES = (".jsonl", ".csv", ".parquet")


def check_output(path: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse an output path that cannot work, before any model is loaded or file created."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(
            f"unknown output extension '{path.suffix or path.name}': use one of {', '.join(SUFFIXES)}"
        )
    if path.exists() and not overwrite:
        raise UsageError(f"output file {path} exists: pass --overwrite (overwrite=True) to replace it")
    check_directory(path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"output file {path} is read-only; fix its permissions or use another -o")
    return path


def check_record_shape(path: str | Path | None, is_object: bool) -> None:
    """CSV and Parquet hold objects (one column per field); other records go to JSONL."""
    if path is None or is_object:
        return
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".parquet"):
        raise UsageError(f"this schema's records are not JSON objects, so they have no columns "
                         f"for {suffix}; write them to a .jsonl file instead")


def check_directory(directory: Path) -> None:
    """The directory an output goes into must exist and be writable."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a directory: choose another -o")
    if not directory.is_dir():
        raise UsageError(f"output directory {directory} does not exist; create it first")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {directory} is not writable; choose another output "
                         "or fix its permissions")


def open_sink(path: str | Path | None, json_schema: dict[str, Any] | None = None, *,
              overwrite: bool = False, stdout: TextIO | None = None,
              append: bool = False, on_durable: Callable[[], None] | None = None) -> Sink:
    """A sink for `path` (`.jsonl`, `.csv`, `.parquet`), or JSONL on stdout when `path` is None.

    Checks happen before the file is created, so a refused run leaves no file behind and an
    existing one untouched.
    """
    from simulacra.sinks.csv import CsvSink
    from simulacra.sinks.jsonl import JsonlSink
    from simulacra.sinks.parquet import ParquetSink

    if path is None or str(path) == "-":
        return JsonlSink(stdout or sys.stdout)
    path = Path(path) if append else check_output(path, overwrite=overwrite)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetSink(path, json_schema or {}, on_durable=on_durable)
    try:
        resumed = append and path.exists() and path.stat().st_size > 0
        handle = path.open("a" if append else "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    if suffix == ".jsonl":
        return JsonlSink(handle, owned=True)
    return CsvSink(handle, json_schema, header_written=resumed)

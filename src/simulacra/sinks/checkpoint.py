"""Resumable output: a checkpoint beside the output says which records it holds.

`out.jsonl.checkpoint` starts with a header line (the job's fingerprint and N), then one
line per record written to the output: that record's index, in the same order. The record is
written (and flushed) before its index, so the checkpoint never claims a record the output
lacks. On a rerun of the same job the output is cut back to the records the checkpoint
lists (a half-written last line goes too), and only the missing indices are generated;
per-record seeds make them the records the first run would have made. A different job on
the same output is refused unless --overwrite.

JSONL and CSV resume this way. A Parquet file is valid only once closed, so Parquet output
is written as part files (sinks.parquet) and its indices are listed when their part is
renamed into place (`record` holds them until `commit`); a resumed run cuts the parts back
to the records the checkpoint lists, and the close merges them into the output file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from simulacra.errors import UsageError
from simulacra.sinks.parquet import parts_dir, reopen_parts


def fingerprint(**job: Any) -> str:
    """A stable hash of what defines a job's output (schema, prompt, model, seed, N...)."""
    text = json.dumps(job, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Checkpoint:
    def __init__(self, path: Path, *, deferred: bool = False) -> None:
        self.path = path
        self._fd: int | None = None
        self.deferred = deferred  # indices wait for `commit` (Parquet: until their part is whole)
        self._held: list[int] = []

    @staticmethod
    def path_for(output: Path) -> Path:
        return output.with_name(output.name + ".checkpoint")

    @classmethod
    def finished(cls, output: str | Path, job_fingerprint: str, n: int) -> bool:
        """Whether this job's output already holds all `n` indices (read, nothing changed)."""
        path = cls.path_for(Path(output))
        if not path.is_file():
            return False
        lines = path.read_text(encoding="utf-8").split("\n")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            return False
        if header.get("fingerprint") != job_fingerprint:
            return False
        return len({x for x in lines[1:-1] if x.strip()}) >= n

    @classmethod
    def prepare(cls, output: str | Path, job_fingerprint: str, n: int, *,
                overwrite: bool = False) -> tuple[Checkpoint, list[int], list[dict[str, Any]]]:
        """Start or resume: returns the checkpoint, the indices already done, their records."""
        output = Path(output)
        path = cls.path_for(output)
        parquet = output.suffix.lower() == ".parquet"
        if overwrite:
            for stale in (output, path):
                stale.unlink(missing_ok=True)
        if parquet and not path.exists():  # a fresh start: no parts of another run
            shutil.rmtree(parts_dir(output), ignore_errors=True)
        done: list[int] = []
        kept: list[dict[str, Any]] = []
        if path.exists():
            lines = path.read_text(encoding="utf-8").split("\n")
            try:
                header = json.loads(lines[0])
            except json.JSONDecodeError:
                raise UsageError(f"{path} is damaged: pass --overwrite (overwrite=True) to start "
                                 "again") from None
            if header.get("fingerprint") != job_fingerprint:
                raise UsageError(
                    f"{output} was made by a different job (schema, prompt, model, seed or N "
                    "differ); pass --overwrite to replace it, or write to another file")
            complete = lines[1:-1]  # the last piece has no newline: a half-written index
            done = [int(x) for x in complete if x.strip()]
            kept = reopen_parts(output, len(done)) if parquet else _truncate(output, len(done))
            write_whole(path, lines[0] + "\n" + "".join(f"{i}\n" for i in done))
        else:
            write_whole(path, json.dumps({"fingerprint": job_fingerprint, "n": n}) + "\n")
        return cls(path, deferred=parquet), done, kept

    def record(self, index: int, rows: int = 1) -> None:
        """Note that index `index` is in the output, as `rows` rows (one line per row, so the
        checkpoint's line count is the output's row count), in one small append: atomic on
        POSIX, so an index is listed for all its rows or not at all."""
        if self.deferred:
            self._held.extend([index] * rows)
        else:
            self._append([index] * rows)

    def commit(self) -> None:
        """The held indices' records are now on disk for good: list them, in one write."""
        held, self._held = self._held, []
        self._append(held)

    def _append(self, indices: list[int]) -> None:
        if not indices:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        os.write(self._fd, "".join(f"{i}\n" for i in indices).encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_whole(path: Path, text: str) -> None:
    """Replace `path` atomically: a kill mid-write leaves the old file or the new one, never
    a half-written header that the next run would have to call damaged."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _truncate(output: Path, keep: int) -> list[dict[str, Any]]:
    """Cut `output` back to its first `keep` records and return them (written atomically)."""
    if not output.exists():
        return []
    if output.suffix.lower() == ".csv":
        tmp = output.with_name(output.name + ".tmp")
        with output.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [row for _, row in zip(range(keep), reader, strict=False)]
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if header:
                writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, output)
        return [dict(zip(header or [], row, strict=False)) for row in rows]
    else:
        text = output.read_text(encoding="utf-8")
        lines = text.split("\n")[:-1][:keep]  # complete lines only
        write_whole(output, "".join(line + "\n" for line in lines))
        return [json.loads(line) for line in lines]

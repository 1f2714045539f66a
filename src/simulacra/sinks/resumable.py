"""One output of a job, whatever the task: the file, its checkpoint and its ledger.

    with ResumableOutput("out.jsonl", fingerprint, n) as out:
        for outcome in task_outcomes(ledger=out.ledger, done=out.done, prior=out.prior):
            out.write(outcome.index, [outcome.data])

On a rerun of the same job (same fingerprint) the output is cut back to what its checkpoint
lists and `done` names the indices already written, so only the rest is run; a different job
on the same file is refused unless `overwrite`. Every index's rows are written and flushed
before the index is listed (all of an index's rows in one append), so a kill at any moment
leaves whole indices only. The ledger beside the output (out.csv gets out.csv.ledger.jsonl)
gets one row per settled index. Without an output path, rows go to stdout and nothing is resumable.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from simulacra.errors import UsageError
from simulacra.sinks.base import Sink, check_output, open_sink
from simulacra.sinks.checkpoint import Checkpoint, write_whole


def ledger_path(output: str | Path) -> Path:
    """out.csv -> out.csv.ledger.jsonl: named after the whole output file, so the ledgers of
    out.csv and out.jsonl in one directory are two files."""
    path = Path(output)
    return path.with_name(path.name + ".ledger.jsonl")


class ResumableOutput:
    def __init__(self, output: str | Path | None, fingerprint: str, n: int, *,
                 columns_schema: dict[str, Any] | None = None, overwrite: bool = False,
                 ledger: bool = True) -> None:
        self.output = str(output) if output is not None else None
        self.fingerprint, self.n = fingerprint, n
        self.columns_schema = columns_schema
        self.overwrite = overwrite
        self.keep_ledger = ledger and output is not None
        self.done: list[int] = []
        self.prior: list[dict[str, Any]] = []
        self.rows = 0
        self._sink: Sink | None = None
        self._ledger: Sink | None = None
        self._checkpoint: Checkpoint | None = None

    @staticmethod
    def precheck(output: str | Path | None, *, overwrite: bool = False) -> None:
        """What can be refused before a model is loaded: the extension, a directory, an
        existing file that is not a resumable run of some job."""
        if output is None:
            return
        check_output(str(output), overwrite=True)
        path = Path(output)
        if not overwrite and path.exists() and not Checkpoint.path_for(path).exists():
            raise UsageError(f"output file {output} exists: pass --overwrite (overwrite=True) to replace it")

    @staticmethod
    def finished(output: str | Path | None, fingerprint: str, n: int) -> bool:
        """Whether a rerun has nothing to do: the output holds every index of this job."""
        return output is not None and Checkpoint.finished(output, fingerprint, n)

    def __enter__(self) -> ResumableOutput:
        self.precheck(self.output, overwrite=self.overwrite)
        try:
            if self.output is not None:
                if self.overwrite:
                    ledger_path(self.output).unlink(missing_ok=True)
                self._checkpoint, done, self.prior = Checkpoint.prepare(
                    self.output, self.fingerprint, self.n, overwrite=self.overwrite)
                self.done = sorted(set(done))
                if self.keep_ledger:
                    _keep_ledger_rows(ledger_path(self.output), set(self.done))
            on_durable = self._checkpoint.commit if self._checkpoint is not None else None
            self._sink = open_sink(self.output, self.columns_schema, append=self.output is not None,
                                   on_durable=on_durable)
            if self.keep_ledger:
                self._ledger = open_sink(str(ledger_path(self.output)), append=True)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def ledger(self) -> Any:
        """The ledger's writer (one dict per settled index), or None."""
        return self._ledger.write if self._ledger is not None else None

    def write(self, index: int, rows: list[dict[str, Any]]) -> None:
        """Write an index's rows, then list the index once per row in the checkpoint."""
        assert self._sink is not None, "use ResumableOutput as a context manager"
        for row in rows:
            self._sink.write(row)
        self.rows += len(rows)
        if self._checkpoint is not None and rows:
            self._checkpoint.record(index, len(rows))

    def close(self) -> None:
        for opened in (self._sink, self._ledger, self._checkpoint):
            if opened is not None:
                with contextlib.suppress(OSError):  # a full disk fails the close too
                    opened.close()
        self._sink = self._ledger = self._checkpoint = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def _keep_ledger_rows(path: Path, done: set[int]) -> None:
    """Cut a resumed run's ledger back to the rows of indices the output holds: the others
    are run again and get their row then, so each index keeps exactly one."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a half-written last line
            continue
        if isinstance(row, dict) and row.get("index") in done:
            kept.append(line + "\n")
    write_whole(path, "".join(kept))

"""The progress line (stderr, with records/s) and the closing summary."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simulacra.engine import RunStats

PLAIN_EVERY = 5.0   # seconds between plain progress lines when stderr is not a terminal


class RecordProgress:
    """A rich progress bar on stderr that shows records/s, attempts and tokens.

    `start(done)` (Generator.write's on_start) says how many an earlier run already wrote;
    `advance()` moves it by one record."""

    def __init__(self, total: int, stats: Callable[[], RunStats],
                 on_resume: Callable[[int], None] | None = None) -> None:
        self._stats = stats   # read at each record: a run starts with fresh stats
        self._total = total
        self._on_resume = on_resume
        self._console = Console(stderr=True)
        self._made, self._said = 0, time.perf_counter()
        self._progress = Progress(
            TextColumn("generating"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=self._console, transient=True,
        )
        self._task = self._progress.add_task("records", total=total, rate="")

    def __enter__(self) -> RecordProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, done: int) -> None:
        if done and self._on_resume is not None:
            self._on_resume(done)
        self._progress.update(self._task, total=self._total - done)

    def advance(self, *_: object) -> None:
        s = self._stats()
        elapsed = time.perf_counter() - s.started
        rate = f"{s.valid / elapsed:.2f} rec/s · {s.attempts} tries · {s.tokens_out} tok"
        self._progress.update(self._task, advance=1, rate=rate)
        self._made += 1
        if not self._console.is_terminal and (time.perf_counter() - self._said >= PLAIN_EVERY
                                              or self._made == self._progress.tasks[0].total):
            # No bar without a terminal (a log, CI): a plain line now and then instead.
            self._said = time.perf_counter()
            self._console.print(f"generating: {self._made}/{self._progress.tasks[0].total:.0f}"
                                f" · {rate}", highlight=False)


def summary_line(stats: RunStats, output: str | None) -> str:
    where = f" to {output}" if output else ""
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejected.items())) or "none"
    routes = ", ".join(f"{k} {v}" for k, v in sorted(stats.routes.items())) or "none"
    return (
        f"{stats.valid} records written{where} · {stats.valid}/{stats.requested} valid · "
        f"{stats.valid} unique · {stats.attempts} attempts (rejected: {rejected}) · "
        f"{len(stats.failed)} failed · {stats.seconds:.1f} s · {stats.records_per_second:.2f} "
        f"records/s · {stats.tokens_in} prompt + {stats.tokens_out} generated tokens · "
        f"served by: {routes}"
        + (f" · diversity steer {stats.diversity:g}" if stats.diversity else "")
        + (f" · no examples given: drafted {stats.drafted} records and kept the most "
           "plausible as examples" if stats.drafted else "")
    )

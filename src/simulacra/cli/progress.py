"""The progress line (stderr, with records/s) and the closing summary."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from simulacra.cpu import CpuMeter, usable_cores
from simulacra.engine import RunStats

PLAIN_EVERY = 5.0   # seconds between plain progress lines when stderr is not a terminal
LOOK_EVERY = 3.0    # seconds between readings of what other processes use
BUSY = 0.5          # cores other processes use before the run counts as sharing the machine
SLOW = 0.6          # below this share of the estimate's rate, the rate is stated
FIRST_LOOK = 2.0    # seconds of generating before the rate is compared with the estimate


class Slowdown:
    """Says when the run is slower than expected, and whether other processes are the reason.

    The expected rate is the estimate's generated tokens/s (estimate.py); the actual one is
    measured as the run goes. On the embedded model, the cores other processes keep busy are
    measured too (simulacra/cpu.py): llama.cpp's threads wait for each other, so a machine
    busy with something else slows a run more than its share of the cores suggests. Through an
    endpoint the CPU is not ours to judge (a local server is another process), so only the
    rate is compared."""

    def __init__(self, expected_tokens_per_s: float, *, embedded: bool,
                 threads: Callable[[], int | None] = lambda: None) -> None:
        self.expected = expected_tokens_per_s
        self._threads = threads
        self._recent = CpuMeter() if embedded else None
        self._whole = CpuMeter() if embedded else None
        self.cores = usable_cores()
        self.others: float | None = None

    def note(self, stats: RunStats, *, final: bool = False) -> str | None:
        """A few words for the progress line, or None while the run goes as expected."""
        if self._recent is not None:
            others = self._recent.others(1.0 if final else LOOK_EVERY)
            self.others = others if others is not None else self.others
        busy = self.others is not None and self.others >= BUSY
        ratio = self.ratio(stats)
        slow = ratio is not None and ratio < SLOW
        if not busy and not slow:
            return None
        said = [f"running at {ratio:.0%} of the expected rate"] if slow else []
        if busy:
            threads = self._threads()
            said.append(f"other processes are using {self.others:.1f} of {self.cores} cores"
                        + (f" (llama.cpp on {threads} thread{'s' * (threads != 1)})"
                           if threads else ""))
        return ": ".join(said)

    def ratio(self, stats: RunStats) -> float | None:
        elapsed = time.perf_counter() - stats.started
        if elapsed < FIRST_LOOK or not stats.tokens_out or not self.expected:
            return None
        return stats.tokens_out / elapsed / self.expected

    def summary(self, stats: RunStats) -> str | None:
        """The closing line when the machine was shared or the run slow, over the whole run."""
        others = self._whole.others() if self._whole is not None else None
        ratio = self.ratio(stats)
        busy = others is not None and others >= BUSY
        if not busy and (ratio is None or ratio >= SLOW):
            return None
        said = f"ran at {ratio:.0%} of the expected rate" if ratio is not None else "ran"
        if busy:
            said += (f"; other processes used {others:.1f} of {self.cores} cores on average: "
                     "a run alone on the machine goes faster")
        return said


class RecordProgress:
    """A rich progress bar on stderr that shows records/s, attempts and tokens.

    `start(done)` (Generator.write's on_start) says how many an earlier run already wrote;
    `advance()` moves it by one record."""

    def __init__(self, total: int, stats: Callable[[], RunStats],
                 on_resume: Callable[[int], None] | None = None,
                 slowdown: Slowdown | None = None) -> None:
        self._stats = stats   # read at each record: a run starts with fresh stats
        self._total = total
        self._on_resume = on_resume
        self.slowdown = slowdown
        self._console = Console(stderr=True)
        self._made, self._said = 0, time.perf_counter()
        self._progress = Progress(
            TextColumn("generating"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
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
        self._made += 1
        total = self._progress.tasks[0].total or 0
        last = self._made >= total
        note = self.slowdown.note(s, final=last) if self.slowdown is not None else None
        if note:
            rate += f" · {note}"
        self._progress.update(self._task, advance=1, rate=rate)
        if not self._console.is_terminal and (time.perf_counter() - self._said >= PLAIN_EVERY
                                              or last):
            # No bar without a terminal (a log, CI): a plain line now and then instead, with
            # the time left at the rate so far.
            self._said = time.perf_counter()
            left = (total - self._made) / (s.valid / elapsed) if s.valid else None
            eta = f" · ~{left:.0f} s left" if left and not last else ""
            self._console.print(f"generating: {self._made}/{total:.0f} · {rate}{eta}",
                                highlight=False, soft_wrap=True)   # a log line, unwrapped


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
        + (f" · {stats.spares_unused} spare{'s' if stats.spares_unused > 1 else ''} not needed"
           if stats.spares_unused else "")
    )

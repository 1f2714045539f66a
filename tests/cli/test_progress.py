"""The progress line's slowdown note: the rate against the estimate, and other processes'
use of the cores (scripted readings here; tests/cli/test_generate.py runs a real spinner)."""

from __future__ import annotations

import time

from simulacra.cli.progress import Slowdown, summary_line
from simulacra.engine import RunStats


class ScriptedMeter:
    def __init__(self, *readings):
        self.readings = list(readings)

    def others(self, min_seconds=0.0):
        return self.readings.pop(0) if self.readings else None


def stats(tokens: int, seconds: float) -> RunStats:
    s = RunStats(tokens_out=tokens)
    s.started = time.perf_counter() - seconds
    return s


def watch(*readings, embedded=True, threads=None) -> Slowdown:
    slowdown = Slowdown(100.0, embedded=embedded, threads=lambda: threads)
    slowdown.cores = 2
    if embedded:
        slowdown._recent = ScriptedMeter(*readings)
        slowdown._whole = ScriptedMeter(*readings)
    return slowdown


def test_nothing_is_said_while_the_run_keeps_its_rate_on_a_quiet_machine():
    slowdown = watch(0.1)
    assert slowdown.note(stats(1000, 10.0)) is None          # 100 tok/s as expected
    assert slowdown.summary(stats(1000, 10.0)) is None


def test_a_busy_machine_is_named_with_the_rate_and_the_threads():
    slowdown = watch(1.0, threads=1)
    note = slowdown.note(stats(400, 10.0))
    assert note == ("running at 40% of the expected rate: other processes are using 1.0 of 2 "
                    "cores (llama.cpp on 1 thread)")
    assert "other processes used 1.0 of 2 cores" in slowdown.summary(stats(400, 10.0))


def test_a_slow_run_on_a_quiet_machine_states_only_the_rate():
    assert watch(0.0).note(stats(300, 10.0)) == "running at 30% of the expected rate"


def test_the_rate_is_not_judged_before_the_first_look():
    assert watch(0.0).note(stats(1, 0.5)) is None


def test_through_an_endpoint_the_cpu_is_not_judged():
    slowdown = watch(embedded=False)
    assert slowdown.note(stats(1000, 10.0)) is None
    assert slowdown.note(stats(200, 10.0)) == "running at 20% of the expected rate"


def test_the_summary_counts_spares_that_were_not_needed():
    run = RunStats(requested=3, valid=3, attempts=3)
    assert "spare" not in summary_line(run, None)
    run.spares_unused = 2
    assert summary_line(run, "out.jsonl").endswith(" · 2 spares not needed")

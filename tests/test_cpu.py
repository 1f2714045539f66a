"""Cores and threads: the user's number, else the cores this process may use, fitted to what
other processes leave free (measured from /proc/stat, on a real spinning process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulacra import cpu
from simulacra.cpu import MAX_THREADS, CpuMeter, ThreadPolicy, busy_seconds, default_threads
from simulacra.errors import UsageError

LINUX = Path("/proc/stat").is_file()
STAT = """cpu  400 0 100 1000 50 0 0 0 0 0
cpu0 300 0 50 400 25 0 0 0 0 0
cpu1 100 0 50 600 25 0 0 0 0 0
intr 1 2 3
"""


def test_the_environment_sets_the_threads(monkeypatch):
    monkeypatch.setenv("SIMULACRA_THREADS", "3")
    assert default_threads() == 3


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_a_bad_thread_count_is_a_usage_error(monkeypatch, raw):
    monkeypatch.setenv("SIMULACRA_THREADS", raw)
    with pytest.raises(UsageError, match="SIMULACRA_THREADS must be a whole number"):
        default_threads()


def test_the_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    allowed = len(os.sched_getaffinity(0))
    assert default_threads() == max(1, min(allowed, MAX_THREADS))


def test_busy_time_leaves_out_idle_and_iowait_and_reads_only_the_cores_asked_for():
    ticks = cpu.CLOCK_TICKS
    assert busy_seconds(STAT, set()) == pytest.approx(500 / ticks)     # summary line
    assert busy_seconds(STAT, {0}) == pytest.approx(350 / ticks)
    assert busy_seconds(STAT, {0, 1}) == pytest.approx(500 / ticks)
    assert busy_seconds(STAT, {7}) is None                            # no such core


class ScriptedMeter:
    def __init__(self, readings):
        self.readings = list(readings)

    def others(self, min_seconds=0.0):
        return self.readings.pop(0) if self.readings else None


@pytest.mark.parametrize(("cores", "others", "threads"), [
    (2, 0.0, 2), (2, 0.2, 2), (2, 1.0, 1), (2, 1.9, 1), (2, 3.0, 1),
    (8, 0.0, MAX_THREADS), (8, 5.2, 3), (1, 0.0, 1),
])
def test_the_policy_gives_the_free_cores(monkeypatch, cores, others, threads):
    monkeypatch.setattr(cpu, "usable_cores", lambda: cores)
    policy = ThreadPolicy()
    policy.meter = ScriptedMeter([others])
    assert policy.poll(now=True) == threads


def test_the_policy_keeps_its_count_between_readings(monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    policy = ThreadPolicy()
    policy.meter = ScriptedMeter([1.0, None, 0.0])
    assert [policy.poll(), policy.poll(), policy.poll()] == [1, 1, 2]


def _spinner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


@pytest.mark.skipif(not LINUX, reason="measured from /proc/stat")
def test_a_spinning_process_counts_as_one_busy_core_and_our_own_work_does_not():
    meter = CpuMeter()
    time.sleep(0.5)
    if meter.others() > 0.3:
        pytest.skip("another process is already busy on this machine")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:   # this process busy for a second: not "others"
        pass
    assert meter.others() < 0.35
    spinner = _spinner()
    try:
        time.sleep(1.5)
        assert meter.others() > 0.7
    finally:
        spinner.kill()
        spinner.wait()

"""The cores this process may use, and how many of them other processes are keeping busy.

Why it matters: llama.cpp's worker threads wait for each other at a barrier after every
operation of the model's graph. When another process takes one of the cores, a worker is
descheduled for a whole time slice and the others wait for it, so two threads on one free
core run slower than one thread would (measured: 35% of the idle rate with one of two cores
busy). The embedded backend therefore asks `ThreadPolicy` how many threads fit the cores
that are free now, and the progress line says when other processes slow the run down.

Linux only (`/proc/stat`); elsewhere nothing is measured and the thread count stays put.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from simulacra.errors import UsageError

MAX_THREADS = 4   # past 4 the 270M model's matrix products stop getting faster
ENV_THREADS = "SIMULACRA_THREADS"
PROC_STAT = Path("/proc/stat")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def requested_threads() -> int | None:
    """$SIMULACRA_THREADS (set by `--threads`), or None when the user left it to us."""
    raw = os.environ.get(ENV_THREADS, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"{ENV_THREADS} must be a whole number of threads, 1 or more; "
                         f"got {raw!r}")
    return int(raw)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity and its cgroup's CPU quota, not the
    machine's core count (a container limited to 2 CPUs on a 64-core host gets 2)."""
    cores = len(_affinity()) or os.cpu_count() or 1
    return max(1, min(cores, _cgroup_cpus() or cores))


def default_threads() -> int:
    """Threads for the embedded model at load: the user's number, else the usable cores (at
    most MAX_THREADS); `ThreadPolicy` then fits them to what other processes leave free."""
    return requested_threads() or max(1, min(usable_cores(), MAX_THREADS))


def _affinity() -> set[int]:
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def _cgroup_cpus() -> int | None:
    """The CPU quota of this process's cgroup (v2 `cpu.max`), rounded down, if one is set."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(quota) // int(period))


@dataclass(frozen=True)
class CpuSample:
    at: float          # monotonic seconds
    busy: float        # CPU-seconds spent busy on this process's cores, by everyone
    own: float         # CPU-seconds this process has used (all its threads)


def busy_seconds(stat_text: str, cpus: set[int]) -> float | None:
    """Busy CPU-seconds on `cpus` since boot, from the text of /proc/stat (every field but
    idle and iowait); all CPUs' summary line when `cpus` is empty."""
    total, found = 0, False
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu"):
            continue
        if (name == "cpu") != (not cpus):
            continue
        if cpus and int(name[3:]) not in cpus:
            continue
        fields = [int(x) for x in rest.split()]
        total += sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
        found = True
    return total / CLOCK_TICKS if found else None


class CpuMeter:
    """Cores other processes kept busy between two readings, on the cores this process may use.

    Others = everyone's busy time on those cores minus this process's own CPU time (its
    spinning workers included, so a waiting llama.cpp thread is not counted as a stranger)."""

    def __init__(self) -> None:
        self._cpus = _affinity()
        self.last = self.sample()

    def sample(self) -> CpuSample | None:
        try:
            busy = busy_seconds(PROC_STAT.read_text(), self._cpus)
        except OSError:
            return None
        if busy is None:
            return None
        t = os.times()
        return CpuSample(time.monotonic(), busy, t.user + t.system)

    def others(self, min_seconds: float = 0.0) -> float | None:
        """Cores used by other processes since the last reading (which this one replaces),
        or None when nothing can be measured or less than `min_seconds` have passed (checked
        before /proc/stat is read, so a caller may ask at every decoding step)."""
        if self.last is None or time.monotonic() - self.last.at < max(min_seconds, 1e-3):
            return None
        now = self.sample()
        if now is None:
            return None
        elapsed = now.at - self.last.at
        used = max(0.0, (now.busy - self.last.busy) - (now.own - self.last.own)) / elapsed
        self.last = now
        return used


class ThreadPolicy:
    """How many threads the embedded model should run now: the usable cores less the cores
    other processes used since the last reading, rounded, at least 1, at most MAX_THREADS.

    Re-measured at most every `every` seconds. Two simulacra runs on one machine settle on
    sharing it: each sees the other's use and gives up the cores it is taking."""

    def __init__(self, every: float = 2.0) -> None:
        self.cores = usable_cores()
        self.every = every
        self.meter = CpuMeter()
        self.others = 0.0
        self.threads = self._fit()

    def _fit(self) -> int:
        return max(1, min(MAX_THREADS, self.cores, round(self.cores - self.others)))

    def poll(self, *, now: bool = False) -> int:
        """The thread count for the next step (`now`: measure even if `every` has not passed,
        as after loading the model)."""
        others = self.meter.others(0.0 if now else self.every)
        if others is not None:
            self.others = others
            self.threads = self._fit()
        return self.threads

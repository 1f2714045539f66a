"""An adaptive concurrency limit for endpoints: additive increase, multiplicative decrease.

Every success raises the limit by one request (up to `maximum`); a rate limit (429) or a
timeout halves it. Threads call `acquire()` before a request and `release(ok)` after.
"""

from __future__ import annotations

import threading


class AdaptiveLimit:
    def __init__(self, start: int = 4, maximum: int = 64, minimum: int = 1) -> None:
        self.limit = float(start)
        self.maximum = maximum
        self.minimum = minimum
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self.in_flight >= int(self.limit):
                self._cond.wait()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def release(self, ok: bool = True, overloaded: bool = False) -> None:
        with self._cond:
            self.in_flight -= 1
            if overloaded:
                self.limit = max(self.minimum, self.limit / 2)
            elif ok:
                self.limit = min(self.maximum, self.limit + 1)
            self._cond.notify_all()

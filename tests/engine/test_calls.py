"""engine/calls.py: any backend with a call policy gets parallel calls, retries, the adaptive
limit and the cache from the engine's side (scripted remote backends, no network)."""

from __future__ import annotations

import threading
import time

from simulacra.backends.base import CallPolicy, Capabilities, Completion, Request
from simulacra.engine import calls
from simulacra.engine.loop import Try, Verdict, run
from simulacra.errors import BackendError


class Remote:
    """A remote-looking backend: `answer(request)` gives the reply or raises."""

    name = "remote"
    model_id = "m"

    def __init__(self, answer, **policy):
        self.answer = answer
        self.capabilities = Capabilities(json_schema=True, batch=1)
        self.call_policy = CallPolicy(**policy)
        self.calls = 0
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()

    def complete(self, requests):
        assert len(requests) == 1   # the engine sends one request per call
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            return [Completion(text=self.answer(requests[0]))]
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self):
        pass


def test_retryable_errors_are_retried_and_the_run_never_sees_them(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    failures = {"p1": 2}

    def answer(request):
        if failures.get(request.prompt, 0):
            failures[request.prompt] -= 1
            raise BackendError("overloaded (503)", backend="remote", retryable=True, status=503)
        return request.prompt.upper()

    backend = calls.wrap(Remote(answer, concurrency=4))
    out = backend.complete([Request(prompt="p0"), Request(prompt="p1")])
    assert [c.text for c in out] == ["P0", "P1"] and backend.retries == 2


def test_a_request_that_keeps_failing_comes_back_as_an_error_and_the_others_are_kept():
    def answer(request):
        if request.prompt == "bad":
            raise BackendError("rejected the request (400)", backend="remote", status=400)
        return "ok"

    out = calls.wrap(Remote(answer)).complete([Request(prompt="bad"), Request(prompt="good")])
    assert out[0].finish_reason == "error" and "(400)" in out[0].text
    assert out[1].text == "ok" and out[1].finish_reason == "stop"


def test_the_cache_answers_a_repeated_request_without_calling_the_backend():
    first = Remote(lambda r: "reply", cache=True)
    calls.wrap(first).complete([Request(prompt="p", seed=1)])
    again = Remote(lambda r: "other", cache=True)   # a new backend, same name and model
    [cached] = calls.wrap(again).complete([Request(prompt="p", seed=1)])
    assert cached.text == "reply" and again.calls == 0
    [fresh] = calls.wrap(again).complete([Request(prompt="p", seed=2)])   # seed is part of it
    assert fresh.text == "other" and again.calls == 1


def test_concurrency_never_passes_the_policy():
    def answer(request):
        time.sleep(0.02)
        return "x"

    backend = Remote(answer, concurrency=3, adaptive=False)
    calls.wrap(backend).complete([Request(prompt=str(i)) for i in range(12)])
    assert backend.peak == 3


def test_the_engine_hands_back_each_result_as_soon_as_it_is_made():
    release = threading.Event()

    def answer(request):
        if request.prompt == "slow":
            assert release.wait(10)
        return request.prompt

    class Echo:
        def requests(self, tries):
            return [Request(prompt="slow" if t.index == 0 else "fast", seed=t.seed) for t in tries]

        def judge(self, attempt: Try, request, completion):
            return Verdict(value=completion.text)

    results = run(Remote(answer, concurrency=2), Echo(), [0, 1], seed=0, max_attempts=1)
    first = next(results)   # the fast one, while the slow one is still waiting
    assert first.index == 1 and first.value == "fast"
    release.set()
    assert [o.value for o in results] == ["slow"]


def test_a_local_backend_is_called_as_it_is():
    from simulacra.backends.fake import ScriptedBackend

    fake = ScriptedBackend()
    assert calls.wrap(fake) is fake

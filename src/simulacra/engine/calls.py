"""How the engine calls a remote backend: in parallel, retried, rate-adapted and cached.

A backend that talks to a service (an OpenAI-compatible endpoint, a LangChain chat model)
only turns one request into one completion and says how it wants to be called, with a
`CallPolicy` (backends/base.py). Everything around the call lives here, the same for every
such backend: up to `concurrency` requests in flight under an adaptive limit (additive
increase; a 429 or a timeout halves it), bounded retries with backoff (or the server's
Retry-After) for errors the backend marks retryable, and the response cache, so a repeated
or resumed run never pays twice. A request that still fails comes back as a Completion with
finish_reason "error" (the engine rejects it and may try again), so one bad request never
throws away the others' records.

    backend = calls.wrap(OpenAIBackend("gpt-4o-mini"))   # what engine.run does itself
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, replace
from typing import Any

from simulacra.backends.base import Backend, CallPolicy, Completion, Request
from simulacra.engine.limiter import AdaptiveLimit
from simulacra.errors import BackendError


def wrap(backend: Backend) -> Backend:
    """`backend` with the calls its policy asks for; the same wrapper every time for one
    backend (kept on it, so its limit and cache persist across runs and go with it), and a
    local backend unchanged."""
    policy: CallPolicy | None = getattr(backend, "call_policy", None)
    if policy is None or isinstance(backend, Calls):
        return backend
    wrapped = getattr(backend, "_engine_calls", None)
    if wrapped is None:
        wrapped = Calls(backend, policy)
        backend._engine_calls = wrapped   # type: ignore[attr-defined]
    return wrapped


class Calls:
    """A remote backend behind a thread pool, an adaptive limit, retries and the cache."""

    def __init__(self, backend: Backend, policy: CallPolicy) -> None:
        self.backend = backend
        self.policy = policy
        self.name, self.model_id = backend.name, backend.model_id
        self.capabilities = replace(backend.capabilities, batch=policy.concurrency)
        self.limit = AdaptiveLimit(start=min(16, policy.concurrency) if policy.adaptive
                                   else policy.concurrency, maximum=policy.concurrency)
        self.retries = 0
        self._pool = ThreadPoolExecutor(max_workers=policy.concurrency)
        self._cache: Any = None   # opened on first use: a refused run writes nothing
        self._scope = f"{backend.name}|{backend.model_id}|{getattr(backend, 'base_url', '')}"

    def __repr__(self) -> str:
        return repr(self.backend)

    def __getattr__(self, attribute: str) -> Any:   # the backend's own counters (requests...)
        if attribute == "backend":   # not set yet (a copy being built): no recursion
            raise AttributeError(attribute)
        return getattr(self.backend, attribute)

    @property
    def cache(self) -> Any:
        if self.policy.cache and self._cache is None:
            from simulacra.cache import ResponseCache

            self._cache = ResponseCache()
        return self._cache

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        """Every request answered, in order (see `stream` for answers as they come)."""
        answers = dict(self.stream(requests))
        return [answers[i] for i in range(len(requests))]

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Completion]]:
        """(position, completion) for each request as soon as it is answered."""
        futures = {self._pool.submit(self._settled, r): i for i, r in enumerate(requests)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def _settled(self, request: Request) -> Completion:
        key = self._key(request)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return cached
        try:
            completion = self._retried(request)
        except BackendError as exc:
            return Completion(text=str(exc), finish_reason="error", route="error")
        if self.cache is not None and completion.finish_reason == "stop":
            self.cache.put(key, completion)
        return completion

    def _retried(self, request: Request) -> Completion:
        """One request with bounded retries: backoff 0.5 s, 1 s, 2 s..., or the server's
        Retry-After; errors that mean overload also halve the concurrency limit."""
        attempt = 0
        while True:
            self.limit.acquire()
            try:
                [completion] = self.backend.complete([request])
            except BackendError as exc:
                self.limit.release(ok=False, overloaded=exc.retryable)
                if not exc.retryable or attempt >= self.policy.max_retries:
                    raise
                self.retries += 1
                time.sleep(exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** attempt)
                attempt += 1
                continue
            self.limit.release(ok=True)
            return completion

    def _key(self, request: Request) -> str:
        from simulacra.cache import ResponseCache

        return ResponseCache.key(self._scope, asdict(request)) if self.policy.cache else ""

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        if self._cache is not None:
            self._cache.close()
        self.backend.close()

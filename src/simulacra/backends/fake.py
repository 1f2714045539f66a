"""A scripted backend for unit tests: replies are enqueued, requests recorded.

It fails loudly when the script runs out, so a test never passes on a silent empty reply:

    fake = ScriptedBackend()
    fake.enqueue('{"name": "Ada"}', '{"name": "Bob"}')
    Generator(Person, model=fake).generate(2)
    assert len(fake.history) == 2
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from simulacra.backends.base import Capabilities, Completion, Request


class ScriptExhausted(AssertionError):
    """The test asked the fake for more replies than it enqueued."""


Reply = str | Completion | Exception | Callable[[Request], "str | Completion"]


class ScriptedBackend:
    """Answers each request with the next enqueued reply (text, Completion, exception or function)."""

    name = "fake"

    def __init__(self, replies: Iterable[Reply] = (), *, capabilities: Capabilities | None = None,
                 model_id: str = "scripted") -> None:
        self.model_id = model_id
        self.capabilities = capabilities or Capabilities(grammar=False, batch=4)
        self._queue: deque[Reply] = deque(replies)
        self.history: list[Request] = []

    def enqueue(self, *replies: Reply) -> ScriptedBackend:
        self._queue.extend(replies)
        return self

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            self.history.append(request)
            if not self._queue:
                raise ScriptExhausted(
                    f"ScriptedBackend has no reply left for request #{len(self.history)}"
                )
            reply = self._queue.popleft()
            if callable(reply) and not isinstance(reply, Exception):
                reply = reply(request)
            if isinstance(reply, Exception):
                raise reply
            if isinstance(reply, str):
                reply = Completion(text=reply, tokens_out=max(1, len(reply) // 4), route="fake")
            out.append(reply)
        return out

    def close(self) -> None:
        pass

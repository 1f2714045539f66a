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


class SchemaFillBackend:
    """Fills each request's JSON Schema with seeded random values: no model, valid records.

    For tests and benchmarks that need many distinct records fast, from the CLI too
    (`-m fake-fill`). A text request (no schema, values it must include) gets a text that
    states every value, so text runs can be tested the same way. `delay` seconds are slept
    per request, to give a run some duration.
    """

    name = "fake-fill"

    def __init__(self, *, delay: float = 0.0, batch: int = 16) -> None:
        import os

        self.model_id = "fake-fill"
        self.capabilities = Capabilities(grammar=False, batch=batch)
        self.delay = float(os.environ.get("SIMULACRA_FAKE_DELAY", delay))
        self.history_count = 0

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        import json
        import random
        import time

        out = []
        for request in requests:
            if self.delay:
                time.sleep(self.delay)
            rng = random.Random(request.seed)
            if request.json_schema is None and request.must_include:  # a text: state the values
                text = "; ".join(request.must_include) + f" (text {rng.randrange(10**6)})."
                text += " More." * max(0, (request.min_chars - len(text) + 5) // 6)
                out.append(Completion(text=text, tokens_out=20, route="fake-fill"))
                continue
            schema = request.json_schema or {"type": "string", "maxLength": 40}
            value = _fill(schema, schema, rng)
            out.append(Completion(text=json.dumps(value), tokens_out=20, route="fake-fill"))
            self.history_count += 1
        return out

    def close(self) -> None:
        pass


def _fill(node: dict, root: dict, rng) -> object:
    import string
    import uuid

    from simulacra.schema.model import ref_target

    if "$ref" in node:
        return _fill(ref_target(root, node["$ref"]), root, rng)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return rng.choice(node["enum"])
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        return _fill(next((o for o in options if o.get("type") != "null"), options[0]), root, rng)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {k: _fill(v, root, rng) for k, v in node.get("properties", {}).items()}
    if kind == "array":
        low = node.get("minItems", 1)
        count = rng.randint(low, max(low, min(3, node.get("maxItems", 3))))
        return [_fill(node.get("items", {}), root, rng) for _ in range(count)]
    if kind == "integer":
        return rng.randint(int(node.get("minimum", 0)), int(min(node.get("maximum", 10**6), 10**9)))
    if kind == "number":
        return round(rng.uniform(node.get("minimum", 0), node.get("maximum", 10**4)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    fmt = node.get("format")
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt == "date":
        return f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date-time":
        return f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z"
    low, high = node.get("minLength", 3), min(node.get("maxLength", 24), 24)
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(low, max(low, high))))

"""The backend contract: one method, `complete`, plus capability flags.

A backend only talks to a model. The engine owns prompts, retries, validation, dedup and
sinks, so a new backend is one small module. Usage:

    backend = get_backend("gemma-270m")
    [completion] = backend.complete([Request(prompt="...", json_schema=schema)])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from simulacra.schema.grammar import SPACED


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the engine uses the best it has."""

    grammar: bool = False        # enforces a JSON Schema token by token (never emits invalid JSON)
    json_schema: bool = False    # accepts a JSON Schema as an API response format
    batch: int = 1               # requests it decodes together in one `complete` call
    chat: bool = False           # prefers instructions + question over raw continuation
    # a few requests more in a batch cost little and the rest can be dropped (a local
    # decoder batching continuously): the engine adds spares to a run's last batch
    spares: bool = False


@dataclass(frozen=True)
class CallPolicy:
    """How a remote backend wants the engine to call it (engine/calls.py does the calling):
    up to `concurrency` requests at once (adapting below it when `adaptive`), `max_retries`
    for errors it marks retryable, and replies cached on disk when `cache`. A backend without
    a policy (the embedded model) is called as it is."""

    concurrency: int = 16
    max_retries: int = 5
    adaptive: bool = True
    cache: bool = False


@dataclass(frozen=True)
class Request:
    """One completion to make.

    `prompt` is text for the model to continue (base models continue it; chat models get it as
    the user message after `instructions`). With `json_schema`, the reply must be one JSON value
    of that schema; constrained backends guarantee it, others are validated by the engine.
    """

    prompt: str
    json_schema: dict[str, Any] | None = None
    instructions: str = ""
    max_tokens: int = 256
    # Constrained backends: past this many tokens, steer the reply to close (end the string,
    # skip optional properties, close arrays) rather than let it run into `max_tokens`.
    close_after: int | None = None
    # Constrained backends: a string past this many characters ends at its next sentence end
    # rather than run on to its length bound, by the key whose value it is ("" for any key
    # not listed; rows have no keys). Empty: strings run to their bound.
    end_text_after: dict[str, int] = field(default_factory=dict)
    temperature: float = 0.8
    seed: int | None = None
    stop: tuple[str, ...] = ()
    feedback: str = ""           # the previous attempt's validation error (reask)
    # Free text only: values the text must contain (in this order) and its minimum length.
    # The embedded backend guarantees both while decoding; others are checked afterwards.
    must_include: tuple[str, ...] = ()
    # For each value, the words that name it (its field): a backend that inserts a value the
    # model did not write puts them before it, so the text says which field the value is.
    include_labels: tuple[str, ...] = ()
    min_chars: int = 0
    # Constrained backends: the reply's JSON layout, as json.dumps's (item, key) separators;
    # the prompt's examples should be in the same one (schema/grammar.py).
    separators: tuple[str, str] = SPACED
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Completion:
    """What the model wrote, with accounting."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    # "stop"; "length" (cut by the token budget) or "repetition" (a loop was stopped): never
    # a valid record; "error": the backend failed this request after its retries (text says why)
    finish_reason: str = "stop"
    route: str = ""              # how it was constrained: grammar, json_schema, json_object, prompt
    seconds: float = 0.0
    # Constrained backends, when the request's extra asks for "confidence": for each token
    # the model chose (not the ones the grammar forced), its byte offset in `text` (UTF-8)
    # and the probability the model gave it among the tokens the grammar allowed.
    probs: list[tuple[int, float]] = field(default_factory=list)


@runtime_checkable
class Backend(Protocol):
    """A model that completes prompts. See the module docstring."""

    name: str
    model_id: str
    capabilities: Capabilities
    # optional: `call_policy: CallPolicy` for a backend that talks to a service

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        """Complete every request, in order. Raise BackendError when the model cannot answer
        (`retryable=True` when trying again may help: the engine then retries it)."""
        ...

    def close(self) -> None:
        """Release the model or connection."""
        ...

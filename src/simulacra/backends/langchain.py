"""Any LangChain chat model as a simulacra backend (extra: `pip install 'simulacra[langchain]'`).

Structured requests use the model's own `with_structured_output(json_schema)` when it works;
if the model or its server refuses, the backend falls back for good to a prompt plus the
tolerant parser. The engine validates every reply either way and retries what fails; its
`call_policy` has the engine send `batch` requests at once and retry failed calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from simulacra.backends.base import CallPolicy, Capabilities, Completion, Request
from simulacra.errors import BackendError

# with_structured_output methods, best first; a model that refuses one is not asked again.
# "json_mode+schema" is JSON mode with the schema in the body, as llama.cpp's server takes it.
METHODS = ("json_schema", "json_mode+schema", "json_mode")


def is_langchain_chat_model(obj: Any) -> bool:
    try:
        from langchain_core.language_models import BaseChatModel
    except ImportError:
        return False
    return isinstance(obj, BaseChatModel)


class LangChainBackend:
    """Wraps a LangChain `BaseChatModel`; the engine sends it `batch` requests at once."""

    name = "langchain"

    def __init__(self, chat_model: Any, *, batch: int = 4) -> None:
        self.chat_model = chat_model
        self.model_id = getattr(chat_model, "model_name", None) or type(chat_model).__name__
        self.capabilities = Capabilities(json_schema=True, batch=batch, chat=True)
        # No reply cache: a chat model's name does not say which server answers it.
        self.call_policy = CallPolicy(concurrency=batch, cache=False)
        self._methods = list(METHODS)  # structured-output methods left to try, best first
        self._methods_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LangChainBackend({self.model_id!r})"

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _messages(self, request: Request) -> list[tuple[str, str]]:
        system = request.instructions or (
            "Reply with exactly one JSON object that matches the schema, nothing else."
            if request.json_schema is not None else "")
        user = request.prompt
        if request.json_schema is not None:
            user += f"\nJSON Schema: {json.dumps(request.json_schema)}\nWrite one JSON object."
        if request.feedback:
            user += f"\nThe previous reply was rejected: {request.feedback}. Fix it."
        return ([("system", system)] if system else []) + [("human", user)]

    def _one(self, request: Request) -> Completion:
        started = time.perf_counter()
        messages = self._messages(request)
        # llama.cpp's server reads max_tokens, not the max_completion_tokens that
        # langchain-openai sends: pass it in the body too, where the model allows that.
        options: dict[str, Any] = {}
        if hasattr(self.chat_model, "extra_body"):
            options["extra_body"] = {"max_tokens": request.max_tokens, "seed": request.seed}
        while request.json_schema is not None and self._methods:
            method = self._methods[0]
            try:
                runnable = self.chat_model.with_structured_output(
                    {"title": "record", "description": "one record", **request.json_schema},
                    method=method.removesuffix("+schema"))
                call = options
                if method == "json_mode+schema":
                    if "extra_body" not in options:
                        raise ValueError("this model takes no extra request body")
                    call = {"extra_body": {**options["extra_body"], "response_format": {
                        "type": "json_object", "schema": request.json_schema}}}
                value = runnable.invoke(messages, **call)
                return Completion(text=json.dumps(value), route=method,
                                  seconds=time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - any refusal means: try the next method
                with self._methods_lock:   # requests run in parallel: drop each method once
                    if self._methods and self._methods[0] == method:
                        self._methods.pop(0)
        try:
            reply = self.chat_model.invoke(messages, **options)
        except Exception as exc:  # noqa: BLE001 - providers raise anything; normalize it
            raise BackendError(f"the LangChain model failed: {type(exc).__name__}",
                               backend=self.name, retryable=True) from None
        usage = getattr(reply, "usage_metadata", None) or {}
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
        return Completion(text=text, tokens_in=usage.get("input_tokens", 0),
                          tokens_out=usage.get("output_tokens", 0), route="prompt",
                          seconds=time.perf_counter() - started)

    def close(self) -> None:
        pass

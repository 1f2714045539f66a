"""Resolve a model name to a backend: a dict of names to factories, not an if/elif chain.

    get_backend(None)                  -> the embedded Gemma 3 270M (default)
    get_backend("gemma-270m")          -> the same
    get_backend("path/to/model.gguf")  -> any GGUF file on the embedded engine
    get_backend("openai/gpt-4o-mini")  -> an OpenAI-compatible endpoint (see backends.openai)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulacra.backends.base import Backend
from simulacra.errors import UnknownModelError

DEFAULT_MODEL = "gemma-270m"
ENV_MODEL = "SIMULACRA_MODEL"

Factory = Callable[..., Backend]


def _embedded(**options: Any) -> Backend:
    from simulacra.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(**options)


def _fill(**options: Any) -> Backend:
    from simulacra.backends.fake import SchemaFillBackend

    return SchemaFillBackend(**options)


_NAMED: dict[str, Factory] = {
    "fake-fill": _fill,  # no model: seeded random records filling the schema (tests, benchmarks)
    "gemma-270m": _embedded,
    "gemma3-270m": _embedded,
    "embedded": _embedded,
}


def register(name: str, factory: Factory) -> None:
    """Make `name` resolve to `factory(**options)` (how tests add a scripted backend)."""
    _NAMED[name] = factory


def unregister(name: str) -> None:
    _NAMED.pop(name, None)


def known_models() -> list[str]:
    return sorted(_NAMED)


def model_name(model: Any = None) -> str:
    """The name a run reports for `model`: $SIMULACRA_MODEL or the default for None."""
    if model is None:
        return os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    if isinstance(model, str):
        return model
    return getattr(model, "model_id", None) or getattr(model, "model", None) or type(model).__name__


def is_model_name(name: str) -> bool:
    """True when `name` resolves here (a known name, a .gguf path, an openai/ model)."""
    return name in _NAMED or name.endswith(".gguf") or _endpoint_model(name) is not None


def _endpoint_model(name: str) -> str | None:
    for prefix in ("openai/", "openai:"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


def get_backend(model: str | Backend | None = None, **options: Any) -> Backend:
    """A backend for `model`: the one place a model becomes a backend. A Backend instance is
    returned as is; simulacra's LangChain models give the backend they run on; another
    LangChain chat model is wrapped by simulacra.backends.langchain."""
    if model is None:
        model = model_name(None)
    if not isinstance(model, str):
        if isinstance(model, Backend):
            return model
        if hasattr(model, "simulacra_backend"):   # ChatSimulacra / SimulacraLLM
            return model.simulacra_backend()
        from simulacra.backends.langchain import LangChainBackend, is_langchain_chat_model

        if is_langchain_chat_model(model):
            return LangChainBackend(model, **options)
        raise UnknownModelError(f"cannot use a {type(model).__name__} as a model")
    if model in _NAMED:
        return _NAMED[model](**options)
    if model.endswith(".gguf"):
        if not Path(model).is_file():
            raise UnknownModelError(f"GGUF file not found: {model}")
        return _embedded(model_path=model, **options)
    endpoint_model = _endpoint_model(model)
    if endpoint_model is not None:
        from simulacra.backends.openai import OpenAIBackend

        return OpenAIBackend(model=endpoint_model, **options)
    raise UnknownModelError(
        f"unknown model '{model}': use one of {', '.join(known_models())}, "
        "a path ending in .gguf, or openai/MODEL (with --base-url for other endpoints)"
    )

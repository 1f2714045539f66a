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
    "fake-fill": _fill,
    "gemma-270m": _embedded,
    "gemma3-270m": _embedded,
    "embedded": _embedded,
}


# Resolvable but not offered to users: no model behind it, seeded random records that fill
# the schema (for tests and benchmarks of everything around the model).
_UNLISTED = {"fake-fill"}


def register(name: str, factory: Factory) -> None:
    """Make `name` resolve to `factory(**options)` (how tests add a scripted backend)."""
    _NAMED[name] = factory


def unregister(name: str) -> None:
    _NAMED.pop(name, None)


def known_models() -> list[str]:
    """The model names a user may pick (`simulacra models`, the unknown-model error)."""
    return sorted(set(_NAMED) - _UNLISTED)


def check_model(model: Any) -> None:
    """Raise UnknownModelError now for a name that `get_backend` would refuse, without
    loading anything (so a run of several models fails before the first one's work)."""
    if model is None or not isinstance(model, str):
        return
    if model.endswith(".gguf") and not Path(model).is_file():
        raise UnknownModelError(f"GGUF file not found: {model}")
    if not is_model_name(model):
        raise UnknownModelError(_unknown(model))


def model_name(model: Any = None) -> str:
    """The name a run reports for `model`: $SIMULACRA_MODEL or the default for None."""
    if isinstance(model, LazyBackend):
        return model.name
    if model is None:
        return os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    if isinstance(model, str):
        return model
    return getattr(model, "model_id", None) or getattr(model, "model", None) or type(model).__name__


def is_model_name(name: str) -> bool:
    """True when `name` resolves here (a known name, a .gguf path, an openai/ model)."""
    return name in _NAMED or name.endswith(".gguf") or _endpoint_model(name) is not None


def is_embedded(name: str) -> bool:
    """True when `name` runs on the embedded engine in this process (CPU threads)."""
    return name.endswith(".gguf") or _NAMED.get(name) is _embedded


def is_endpoint(name: str) -> bool:
    """True for an openai/NAME model (the one kind that takes --base-url and a key)."""
    return _endpoint_model(name) is not None


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
        if isinstance(model, LazyBackend):
            return model.backend
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
    check_model(model)
    if model.endswith(".gguf"):
        return _embedded(model_path=model, **options)
    from simulacra.backends.openai import OpenAIBackend  # check_model: openai/NAME is left

    return OpenAIBackend(model=_endpoint_model(model), **options)


def _unknown(model: str) -> str:
    return (f"unknown model '{model}': use one of {', '.join(known_models())}, "
            "a path ending in .gguf, or openai/MODEL (with --base-url for other endpoints)")


class LazyBackend:
    """A model named now and loaded on first use, so a refused option, an estimate or a
    job that is already finished never pays for loading it. Unknown names fail at once."""

    def __init__(self, model: Any = None, **options: Any) -> None:
        self._shared = model if isinstance(model, LazyBackend) else None   # one load for both
        if self._shared is not None:
            model, options = self._shared.model, self._shared.options
        check_model(model)
        self.model, self.options = model, options
        self._backend: Backend | None = model if isinstance(model, Backend) else None

    @property
    def backend(self) -> Backend:
        if self._shared is not None:
            return self._shared.backend
        if self._backend is None:
            self._backend = get_backend(self.model, **self.options)
        return self._backend

    @property
    def name(self) -> str:
        """The name a run reports: the loaded backend's model id, or the name it was given."""
        loaded = self._shared._backend if self._shared is not None else self._backend
        return loaded.model_id if loaded is not None else model_name(self.model)

    @property
    def key(self) -> str:
        """The model as a job's fingerprint names it, without loading it."""
        if not isinstance(self.model, str | None):   # an object: what it calls itself
            return self.name
        name = model_name(self.model)
        if name.endswith(".gguf"):
            return str(Path(name).resolve())
        base_url = self.options.get("base_url")
        return f"{name}@{base_url}" if base_url else name

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
        elif self._backend is not None:
            self._backend.close()


class UsesModel:
    """For the classes that run on a model (Generator, TextWriter, Extractor): they set
    `self._model = LazyBackend(...)` and get `backend` and `model_key` from here."""

    _model: LazyBackend

    @property
    def backend(self) -> Backend:
        """The model's backend, loaded on first use (a finished job never loads it)."""
        return self._model.backend

    @property
    def model_key(self) -> str:
        """The model as a job's fingerprint names it, without loading it."""
        return self._model.key

    def close(self) -> None:
        """Release the model, if it was loaded."""
        self._model.close()

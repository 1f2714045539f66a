"""Shared fixtures: the real embedded model, a real llama.cpp server, isolated environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.llama_server import free_port as _free_port  # noqa: F401 - tests import it here
from tests.llama_server import start_llama_server, stop_llama_server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the user's model choice or API key, and each runs in its own directory.
    The embedded model runs on a fixed number of threads: the count fitted to the machine's
    load changes llama.cpp's rounding, so a busy CI machine would decode other texts than
    an idle one (tests of the fitted count remove this)."""
    monkeypatch.setenv("SIMULACRA_THREADS", str(min(2, os.cpu_count() or 1)))
    monkeypatch.delenv("SIMULACRA_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("SIMULACRA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedded():
    """The embedded Gemma 3 270M, loaded once for the session."""
    from simulacra.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(batch=4)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real OpenAI-compatible server (llama_cpp.server) on 127.0.0.1 serving the same GGUF."""
    log_path = tmp_path_factory.mktemp("server") / "llama_server.log"
    print(f"llama_cpp.server log: {log_path}")
    proc, base_url = start_llama_server(log_path)
    try:
        yield base_url
    finally:
        stop_llama_server(proc)


@pytest.fixture
def counted_model():
    """The model name "counted-fill": schema-filling records, and a list that grows each time
    its backend is built (loaded), for tests that a run loads a model only when it must."""
    from simulacra.backends.fake import SchemaFillBackend
    from simulacra.backends.registry import register, unregister

    built = []

    def factory(**options):
        built.append(options)
        return SchemaFillBackend()

    register("counted-fill", factory)
    yield built
    unregister("counted-fill")

"""Start and stop a real OpenAI-compatible server (llama_cpp.server) on 127.0.0.1 serving the
embedded GGUF: the tests' `llama_server` fixture and bench/endpoint.py both use it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MODEL_ALIAS = "gemma-270m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(log_path: Path, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """The server process and its base URL, once it answers /models; its output goes to
    `log_path`. Raises RuntimeError (the process stopped) if it exits or does not answer."""
    from simulacra.backends.llamacpp import default_model_path

    port = free_port()
    with open(log_path, "w") as log:   # the child keeps its own handle
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads",
             "2", "--model_alias", MODEL_ALIAS],
            stdout=log, stderr=log,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return proc, base_url
        except OSError:
            if time.monotonic() > deadline:
                stop_llama_server(proc)
                raise RuntimeError(f"llama_cpp.server did not answer in {timeout:.0f} s") from None
            time.sleep(0.5)


def stop_llama_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

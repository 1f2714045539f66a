"""The API key never appears in logs, outputs, ledgers, checkpoints, caches or errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, ROOT, _free_port

pytestmark = pytest.mark.server
SECRET = "sk-test-SECRET-4f9a2c7e1b"


def run(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "SIMULACRA_CACHE_DIR": str(tmp_path / "cache"),
           "SIMULACRA_TRACEBACK": ""}
    return subprocess.run([sys.executable, "-c", "from simulacra.cli.app import main; main()",
                           *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_the_key_appears_nowhere(llama_server, tmp_path):
    spec = f"{EXAMPLES}/medical_billing.py:MedicalBilling"
    shots = ["--examples", f"{EXAMPLES}/medical_billing.jsonl"]
    ok = run(["generate", spec, "-n", "2", "-m", "openai/gemma-270m", "--base-url", llama_server,
              "-o", str(tmp_path / "out.jsonl"), *shots], tmp_path)
    again = run(["generate", spec, "-n", "2", "-m", "openai/gemma-270m", "--base-url",
                 llama_server, "-o", str(tmp_path / "again.jsonl"), *shots], tmp_path)  # cached
    down = run(["generate", spec, "-n", "2", "-m", "openai/gemma-270m", "--base-url",
                f"http://127.0.0.1:{_free_port()}/v1"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert down.returncode == 2 and "unreachable" in down.stderr
    texts = [p.stdout + p.stderr for p in (ok, again, down)]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"out.jsonl", "out.jsonl.ledger.jsonl", "out.jsonl.checkpoint",
                                       "responses.sqlite"}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
        assert b"SECRET" not in path.read_bytes(), path
    for text in texts:
        assert "SECRET" not in text

"""The embedded model's threads: `--threads` is honoured by llama.cpp itself; left to us, the
count fits the cores other processes leave free (a real spinning process here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from simulacra.cli.app import app
from simulacra.cpu import MAX_THREADS, usable_cores
from tests.conftest import EXAMPLES

SPEC = f"{EXAMPLES}/medical_billing.py:MedicalBilling"


def test_threads_zero_is_refused_before_anything_loads(tmp_path):
    result = CliRunner().invoke(app, ["generate", SPEC, "-n", "2", "--threads", "0"])
    assert result.exit_code == 2 and "Invalid value for '--threads'" in result.stderr


@pytest.mark.embedded
def test_one_thread_still_makes_valid_records(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["generate", SPEC, "-n", "2", "--threads", "1", "--seed",
                                      "3", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len([json.loads(x) for x in out.read_text().splitlines()]) == 2
    assert os.environ["SIMULACRA_THREADS"] == "1"


def _llama_threads(backend) -> int:
    import llama_cpp

    return llama_cpp.llama_n_threads(backend._decoder.ctx.ctx)


@pytest.mark.embedded
def test_a_fixed_thread_count_is_what_llama_cpp_runs(monkeypatch):
    from simulacra.backends.llamacpp import LlamaCppBackend

    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    backend = LlamaCppBackend(batch=2, n_threads=1)
    try:
        assert backend.thread_policy is None and _llama_threads(backend) == 1
    finally:
        backend.close()
    monkeypatch.setenv("SIMULACRA_THREADS", "2")   # what --threads 2 sets
    backend = LlamaCppBackend(batch=2)
    try:
        assert backend.thread_policy is None and _llama_threads(backend) == 2
    finally:
        backend.close()


@pytest.mark.embedded
@pytest.mark.skipif(not usable_cores() <= MAX_THREADS, reason="a busy core must leave fewer")
def test_left_to_us_the_threads_leave_a_busy_core_alone(monkeypatch):
    from simulacra.backends.llamacpp import LlamaCppBackend

    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        backend = LlamaCppBackend(batch=2)
        try:
            assert backend.thread_policy is not None
            assert backend.threads == _llama_threads(backend) == max(1, usable_cores() - 1)
        finally:
            backend.close()
    finally:
        spinner.kill()
        spinner.wait()

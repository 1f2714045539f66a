"""Faults between simulacra and a real llama.cpp server, injected by a loopback proxy."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from simulacra import Generator
from simulacra.backends.openai import OpenAIBackend
from simulacra.cli.app import app
from simulacra.engine import calls
from tests.data.rich_models import Pet
from tests.faultproxy import KINDS, FaultProxy

pytestmark = pytest.mark.server


def upstream(llama_server: str) -> str:
    return llama_server.removesuffix("/v1")


# A small schema: llama.cpp's server decodes one request at a time (a MedicalBilling record
# takes it ~6 s on 2 cores, a Pet well under 1 s).
FAULT_N = int(os.environ.get("SIMULACRA_FAULT_N", "50"))


def test_twenty_percent_faults_still_give_exactly_n_valid_records(llama_server):
    proxy = FaultProxy(upstream(llama_server), rate=0.2, seed=4, hang=6).start()
    try:
        backend = OpenAIBackend("gemma-270m", base_url=proxy.base_url, concurrency=1,
                                timeout=5, cache=False)
        gen = Generator(Pet, model=backend, seed=2, subject="pets")
        records = gen.generate(FAULT_N)
    finally:
        proxy.stop()
    print(f"faults injected: {dict(proxy.injected)}; retries {calls.wrap(backend).retries}; "
          f"rejected {dict(gen.stats.rejected)}")
    assert len(records) == FAULT_N and all(isinstance(r, Pet) for r in records)
    assert len({r.model_dump_json() for r in records}) == FAULT_N
    assert sum(proxy.injected.values()) >= FAULT_N // 10
    assert set(proxy.injected) <= set(KINDS)


def test_all_requests_faulted_ends_with_exit_1_a_summary_and_the_records_kept(llama_server, tmp_path):
    proxy = FaultProxy(upstream(llama_server), rate=1.0, seed=1, healthy=2,
                       kinds=("500", "503", "invalid-json")).start()
    out = tmp_path / "out.jsonl"
    try:
        result = CliRunner().invoke(app, [
            "generate", "tests.data.rich_models:Pet", "-n", "4",
            "-m", "openai/gemma-270m", "--base-url", proxy.base_url, "-o", str(out),
            "--max-attempts", "2", "--no-cache", "--concurrency", "1"], catch_exceptions=False)
    finally:
        proxy.stop()
    assert result.exit_code == 1
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert 1 <= len(kept) <= 2  # the two healthy requests' records (unless one was invalid)
    assert f"{len(kept)} records written" in result.stderr and "failed" in result.stderr
    assert f"records failed; {len(kept)} were kept" in result.stderr
    assert "Traceback" not in result.output

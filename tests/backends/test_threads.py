"""How many threads the embedded model gets: the user's number, else the cores it may use."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from simulacra.backends.llamacpp import MAX_THREADS, default_threads
from simulacra.cli.app import app
from simulacra.errors import UsageError
from tests.conftest import EXAMPLES

SPEC = f"{EXAMPLES}/medical_billing.py:MedicalBilling"


def test_the_environment_sets_the_threads(monkeypatch):
    monkeypatch.setenv("SIMULACRA_THREADS", "3")
    assert default_threads() == 3


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_a_bad_thread_count_is_a_usage_error(monkeypatch, raw):
    monkeypatch.setenv("SIMULACRA_THREADS", raw)
    with pytest.raises(UsageError, match="SIMULACRA_THREADS must be a whole number"):
        default_threads()


def test_the_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    allowed = len(os.sched_getaffinity(0))
    assert default_threads() == max(1, min(allowed, MAX_THREADS))


def test_threads_zero_is_refused_before_anything_loads(tmp_path):
    result = CliRunner().invoke(app, ["generate", SPEC, "-n", "2", "--threads", "0"])
    assert result.exit_code == 2 and "--threads must be at least 1" in result.stderr


@pytest.mark.embedded
def test_one_thread_still_makes_valid_records(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["generate", SPEC, "-n", "2", "--threads", "1", "--seed",
                                      "3", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len([json.loads(x) for x in out.read_text().splitlines()]) == 2
    assert os.environ["SIMULACRA_THREADS"] == "1"

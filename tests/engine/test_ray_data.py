"""The same job on Ray Data: a local Ray cluster on this machine (2 CPUs), shards on disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from simulacra import Generator
from simulacra.checks.gate import canonical, record_key
from simulacra.engine.ray_data import ShardLayout, plan_size
from simulacra.errors import UsageError
from tests.conftest import EXAMPLES

pytest.importorskip("ray")

MEDICAL = f"{EXAMPLES / 'medical_billing.py'}:MedicalBilling"


def medical_examples() -> list[dict]:
    return [json.loads(line) for line in (EXAMPLES / "medical_billing.jsonl").read_text().splitlines()]


def shard_rows(directory: Path) -> dict[str, list[dict]]:
    rows = {}
    for path in sorted(directory.glob("shard-*")):
        if path.suffix == ".parquet":
            rows[path.name] = pq.read_table(path).to_pylist()
        else:
            rows[path.name] = [json.loads(line) for line in path.read_text().splitlines()]
    return rows


def test_sizes_follow_the_cluster_unless_given():
    assert plan_size(40, 2, embedded=True, actors=2, cpus_per_actor=None, shard_size=None) == (2, 1.0, 5)
    assert plan_size(10**6, 64, embedded=True, actors=None, cpus_per_actor=None,
                     shard_size=None) == (16, 4, 10_000)
    assert plan_size(100, 8, embedded=False, actors=None, cpus_per_actor=None,
                     shard_size=7) == (8, 1.0, 7)


def test_record_key_ignores_how_a_reader_typed_the_columns():
    assert record_key({"a": 1, "b": "x"}) == record_key({"b": "x", "a": 1.0})
    assert record_key({"a": 1}) != record_key({"a": 2})


def test_the_gate_and_ray_share_one_record_identity():
    from simulacra.checks.gate import RecordGate

    gate = RecordGate([])
    gate.admit({"a": 1, "b": [2, 3]})
    assert gate.reject_reason({"b": [2.0, 3], "a": 1.0}).startswith("duplicate")
    assert canonical({"a": 1.0}) == canonical({"a": 1})


# First, before this module's in-process cluster exists: the CLI starts its own local cluster.
@pytest.mark.embedded
def test_a_killed_run_resumes_by_shard_and_the_count_stays_exact(tmp_path):
    out = tmp_path / "shards"
    command = [sys.executable, "-m", "simulacra", "generate", MEDICAL, "-n", "40",
               "--examples", str(EXAMPLES / "medical_billing.jsonl"), "--subject", "medical_billing",
               "--ray", "--actors", "2", "--shard-size", "5", "--format", "jsonl", "-o", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("shard-*.jsonl")) and time.monotonic() < deadline:
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local cluster it started
    first.wait()
    time.sleep(3)  # a write task already running may still land its (whole) shard
    survived = shard_rows(out)
    assert 1 <= len(survived) < 8
    assert all(len(rows) == 5 for rows in survived.values())  # whole shards only
    digests = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in survived}

    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = re.search(r"resuming: (\d+) of 8 shards already in ", second.stderr)
    assert resumed and len(survived) <= int(resumed.group(1)) < 8, second.stderr[-2000:]
    # Ray's own log lines (core worker, warnings, INFO) stay out of the terminal without -v
    ray_lines = [line for line in second.stderr.splitlines()
                 if re.search(r"core_worker|\bWARNING\b|\bINFO\b|\] [EWI] ", line)]
    assert not ray_lines, ray_lines
    rows = [r for shard in shard_rows(out).values() for r in shard]
    sys.path.insert(0, str(EXAMPLES))
    from medical_billing import MedicalBilling

    assert len(rows) == 40 and len({json.dumps(r, sort_keys=True) for r in rows}) == 40
    assert all(MedicalBilling.model_validate(r) for r in rows)
    for name, digest in digests.items():  # finished shards were not made again
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert not list(out.glob(".shard-*"))


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from simulacra.engine.ray_data import connect

    connect(None)
    assert ray.cluster_resources()["CPU"] == os.cpu_count()
    yield
    ray.shutdown()


@pytest.mark.embedded
def test_forty_medical_billing_records_across_two_actors_on_the_embedded_model(local_ray, tmp_path):
    sys.path.insert(0, str(EXAMPLES))
    from medical_billing import MedicalBilling

    gen = Generator(MEDICAL, examples=medical_examples(), subject="medical_billing", seed=0)
    summary = gen.generate_ray(40, str(tmp_path / "shards"), actors=2)
    print(summary.line("shards"))
    shards = shard_rows(tmp_path / "shards")
    rows = [r for shard in shards.values() for r in shard]
    assert summary.records == 40 and summary.failed == 0
    assert len(shards) == summary.shards == 8 and len(summary.actor_processes) == 2
    assert len(rows) == 40 and len({json.dumps(r, sort_keys=True) for r in rows}) == 40
    assert all(isinstance(MedicalBilling.model_validate(r), MedicalBilling) for r in rows)


TINY = {"title": "Coin", "type": "object", "required": ["side", "mint"],
        "properties": {"side": {"enum": ["heads", "tails"]}, "mint": {"enum": ["a", "b", "c"]}}}


def test_duplicates_across_shards_are_found_by_a_ray_step_and_remade(local_ray, tmp_path):
    # Six possible records, four one-record shards: with seed 0 shards 0 and 3 first draw the
    # same coin (each shard alone is duplicate-free by construction).
    gen = Generator(TINY, model="fake-fill", seed=0)
    summary = gen.generate_ray(4, str(tmp_path / "coins"), fmt="jsonl", shard_size=1, actors=2)
    rows = [r for shard in shard_rows(tmp_path / "coins").values() for r in shard]
    assert summary.duplicates_removed >= 1
    assert len(rows) == 4 and len({(r["side"], r["mint"]) for r in rows}) == 4


def test_samplers_and_rules_work_the_same_on_ray(local_ray, tmp_path):
    from simulacra import samplers

    def job() -> Generator:
        return Generator(MEDICAL, model="fake-fill", seed=4, rules=["insurance_claim_amount <= total_charge"],
                         samplers={"patient_id": samplers.sequence(start=1000),
                                   "patient_name": samplers.faker("name")})

    summary = job().generate_ray(30, str(tmp_path / "shards"), fmt="jsonl", shard_size=7, actors=2)
    rows = [r for shard in shard_rows(tmp_path / "shards").values() for r in shard]
    assert summary.records == 30 and summary.rejected.get("rule", 0) > 0  # rules made retries
    # The sequence follows the global record index across shards, as in one process.
    assert sorted(r["patient_id"] for r in rows) == list(range(1000, 1030))
    assert all(r["insurance_claim_amount"] <= r["total_charge"] for r in rows)
    local = {r.patient_id: r.patient_name for r in job().generate(30)}
    assert {r["patient_id"]: r["patient_name"] for r in rows} == local  # same seeds, same values


def test_a_different_job_on_the_same_shards_is_refused(local_ray, tmp_path):
    out = str(tmp_path / "coins")
    Generator(TINY, model="fake-fill", seed=1).generate_ray(2, out, shard_size=1, actors=1)
    before = shard_rows(Path(out))
    with pytest.raises(UsageError, match="different job"):
        Generator(TINY, model="fake-fill", seed=2).generate_ray(2, out, shard_size=1, actors=1)
    assert shard_rows(Path(out)) == before
    again = Generator(TINY, model="fake-fill", seed=1).generate_ray(2, out, actors=1)
    assert again.shards_kept == 2 and again.shards_made == 0


def test_layout_counts_whole_and_short_shards(tmp_path):
    layout = ShardLayout(tmp_path, "jsonl", n=7, shard_size=3)
    assert layout.count == 3 and layout.span(2) == (6, 7)
    layout.path(0).write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    layout.path(1).write_text('{"a": 4}\n')  # records failed: made again by a rerun
    assert layout.missing() == [1, 2] and layout.present() == [0, 1]

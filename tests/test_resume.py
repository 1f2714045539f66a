"""Kill a generation run with SIGKILL at random points and rerun it: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

SPEC = f"{EXAMPLES}/medical_billing.py:MedicalBilling"


def cli(*args: str, env: dict | None = None) -> list[str]:
    return [sys.executable, "-c", "from simulacra.cli.app import main; main()", *args]


def lines_parse(path: Path) -> list[dict]:
    """Every line of the file, as it is on disk right now, must be a whole record (Parquet:
    the file, or every part file of a run in progress, must read)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        parts = sorted(path.with_name(path.name + ".parts").glob("part-*.parquet"))
        files = parts or ([path] if path.exists() else [])
        return [row for f in files for row in pq.read_table(f).to_pylist()]
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "a half-written line"
    if path.suffix == ".csv":
        import csv

        rows = list(csv.reader(text.splitlines()))
        assert all(len(row) == len(rows[0]) for row in rows), "a half-written row"
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    return [json.loads(line) for line in text.splitlines()]


def written(out: Path) -> int:
    """Parquet part files, or lines of a JSONL file: what grows as a run writes."""
    if out.suffix == ".parquet":
        return len(list(out.with_name(out.name + ".parts").glob("part-*.parquet")))
    return out.read_bytes().count(b"\n") if out.exists() else 0


def wait_for_a_new_part(out: Path, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Block until the run writes one more Parquet part (or JSONL line) than it found, so a
    kill that follows always has new output to keep, however slow this machine is today."""
    start, deadline = written(out), time.monotonic() + timeout
    while written(out) == start and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def run_until_done(out: Path, n: int, model_args: list[str], kills: int, env: dict,
                   rng: random.Random, window: tuple[float, float],
                   kept: list[int] | None = None, after_a_new_part: bool = False,
                   command: list[str] | None = None) -> int:
    """Start the run, SIGKILL it `kills` times at random moments, then let it finish. `kept`
    gets the number of records on disk after each kill. With `after_a_new_part` the random
    moment is counted from when the run wrote its first new Parquet part (or JSONL line)."""
    survived = 0
    while True:
        args = command or ["generate", SPEC, "-n", str(n)]
        proc = subprocess.Popen(cli(*args, "-o", str(out), *model_args),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=ROOT)
        if survived < kills:
            if after_a_new_part:
                wait_for_a_new_part(out, proc)
            time.sleep(rng.uniform(*window))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                survived += 1
                on_disk = lines_parse(out)  # the state a kill leaves behind parses
                if kept is not None:
                    kept.append(len(on_disk))
                continue
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-500:]
        return survived


def killed_runs_match_a_clean_run(out: Path, n: int, seed: int, kills: int,
                                  window: tuple[float, float],
                                  after_a_new_part: bool = False) -> list[int]:
    """Kill the fake-backend run `kills` times, finish it, and check it holds exactly the
    records an uninterrupted run of the same job makes (same seed, so the same set).
    Returns the records on disk after each kill."""
    env = {**os.environ, "SIMULACRA_FAKE_DELAY": "0.02"}
    args = ["-m", "fake-fill", "--seed", str(seed)]
    kept: list[int] = []
    assert run_until_done(out, n, args, kills, env, random.Random(seed), window, kept,
                          after_a_new_part) == kills
    records = lines_parse(out)
    assert len(records) == n and len({json.dumps(r, sort_keys=True) for r in records}) == n
    clean = out.with_name("clean" + out.suffix)
    subprocess.run(cli("generate", SPEC, "-n", str(n), "-o", str(clean), *args), env=env,
                   check=True, capture_output=True, cwd=ROOT)
    assert sorted(map(json.dumps, lines_parse(clean))) == sorted(map(json.dumps, records))
    return kept


def test_sigkill_at_ten_points_with_the_fake_backend(tmp_path):
    killed_runs_match_a_clean_run(tmp_path / "out.jsonl", 600, seed=5, kills=10, window=(1.0, 2.0))
    checkpoint = (tmp_path / "out.jsonl.checkpoint").read_text().splitlines()
    assert sorted(map(int, checkpoint[1:])) == list(range(600))


def test_a_different_job_on_the_same_output_is_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    env = dict(os.environ)
    subprocess.run(cli("generate", SPEC, "-n", "5", "-o", str(out), "-m", "fake-fill"), env=env,
                   check=True, capture_output=True, cwd=ROOT)
    before = out.read_text()
    other = subprocess.run(cli("generate", SPEC, "-n", "6", "-o", str(out), "-m", "fake-fill"),
                           env=env, capture_output=True, text=True, cwd=ROOT)
    assert other.returncode == 2 and "made by a different job" in other.stderr
    assert out.read_text() == before
    again = subprocess.run(cli("generate", SPEC, "-n", "5", "-o", str(out), "-m", "fake-fill"),
                           env=env, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and out.read_text() == before  # already complete: no change


def test_csv_output_resumes_too(tmp_path):
    env = {**os.environ, "SIMULACRA_FAKE_DELAY": "0.02"}
    out = tmp_path / "out.csv"
    run_until_done(out, 80, ["-m", "fake-fill"], 3, env, random.Random(9), (1.0, 2.0))
    rows = lines_parse(out)
    assert len(rows) == 80 and len({tuple(r.values()) for r in rows}) == 80


def test_parquet_output_resumes_from_its_part_files(tmp_path):
    # A part is 256 records. Each run is killed at a random moment in the 0-2 s after it wrote
    # its first new part (how long start-up takes varies a lot on a shared machine), so every
    # kill leaves whole parts only, one more at least than the run found.
    kept = killed_runs_match_a_clean_run(tmp_path / "out.parquet", 1400, seed=7, kills=4,
                                         window=(0.0, 2.0), after_a_new_part=True)
    assert all(k % 256 == 0 for k in kept), kept
    assert kept[0] > 0, kept
    assert all(later > earlier for earlier, later in zip(kept, kept[1:], strict=False)), kept
    assert not (tmp_path / "out.parquet.parts").exists()  # merged into one file at the end


def killed_task_matches_a_clean_run(tmp_path, command: list[str], kills: int) -> list[dict]:
    """Kill `simulacra text`/`extract` on the fake backend `kills` times, finish it, and
    check that the output, checkpoint and ledger equal an uninterrupted run's."""
    env = {**os.environ, "SIMULACRA_FAKE_DELAY": "0.02"}
    out = tmp_path / "out.jsonl"
    kept: list[int] = []
    assert run_until_done(out, 0, ["-m", "fake-fill"], kills, env, random.Random(3), (0.0, 1.0),
                          kept, after_a_new_part=True, command=command) == kills
    clean = tmp_path / "clean.jsonl"
    subprocess.run(cli(*command, "-o", str(clean), "-m", "fake-fill"), env=env, check=True,
                   capture_output=True, cwd=ROOT)
    assert sorted(out.read_text().splitlines()) == sorted(clean.read_text().splitlines())
    ledger = [json.loads(x) for x in (tmp_path / "out.jsonl.ledger.jsonl").read_text().splitlines()]
    assert all(row["tries"] and row["seed"] is not None for row in ledger)
    assert kept[0] > 0 and kept[-1] < len(clean.read_text().splitlines()), kept  # killed mid-run
    return ledger


def test_text_resumes_after_sigkill_and_keeps_a_ledger(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps({"name": f"Person {i}", "city": f"Town {i}"}) + "\n"
                               for i in range(300)))
    ledger = killed_task_matches_a_clean_run(tmp_path, ["text", str(records)], kills=3)
    assert sorted(row["index"] for row in ledger if row["outcome"] == "ok") == list(range(300))


def test_extract_resumes_after_sigkill_and_keeps_a_ledger(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"Actor {i} starred in Film {i}."}) + "\n"
                             for i in range(300)))
    ledger = killed_task_matches_a_clean_run(
        tmp_path, ["extract", str(texts), "--schema", f"{EXAMPLES}/actor.py:Actor"], kills=3)
    assert sorted(row["index"] for row in ledger if row["outcome"] == "ok") == list(range(300))


@pytest.mark.embedded
def test_sigkill_on_the_embedded_model(tmp_path):
    # The kill lands within half a second of the first record written (a fixed delay from
    # the start let a fast build finish first); 64 records are two batches, so the run is
    # still going then.
    out = tmp_path / "out.jsonl"
    kills = run_until_done(out, 64, ["--examples", str(EXAMPLES / "medical_billing.jsonl")], 1,
                           dict(os.environ), random.Random(1), (0.0, 0.5), after_a_new_part=True)
    from examples.medical_billing import MedicalBilling

    records = lines_parse(out)
    assert kills == 1 and len(records) == 64
    assert len({json.dumps(r, sort_keys=True) for r in records}) == 64
    for record in records:
        MedicalBilling.model_validate(record)

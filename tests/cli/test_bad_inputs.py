"""Bad input across every command: exit 2, one line naming the problem, no traceback,
existing files unchanged. (generate's own cases are in test_generate.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulacra.cli.app import app
from tests.conftest import EXAMPLES, ROOT

SPEC = f"{EXAMPLES}/medical_billing.py:MedicalBilling"


def write(tmp, name, text):
    path = tmp / name
    path.write_text(text)
    return str(path)


CASES = [
    ("text: missing file", lambda t: ["text", str(t / "nope.jsonl")], "input file not found"),
    ("text: not JSONL", lambda t: ["text", write(t, "r.jsonl", "{broken\n")], "is not valid JSON"),
    ("text: empty file", lambda t: ["text", write(t, "r.jsonl", "\n")], "holds no records"),
    ("text: record not an object", lambda t: ["text", write(t, "r.jsonl", "[1, 2]\n")],
     "must be a non-empty JSON object"),
    ("text: record missing required fields",
     lambda t: ["text", write(t, "r.jsonl", '{"patient_id": 1}\n'), "--schema", SPEC],
     "does not match MedicalBilling: patient_name"),
    ("text: negative min length",
     lambda t: ["text", write(t, "r.jsonl", '{"a": "b"}\n'), "--min-length", "-3"],
     "--min-length must be 0 or more"),
    ("extract: empty text", lambda t: ["extract", write(t, "t.jsonl", '{"text": "  "}\n'),
                                       "--schema", SPEC], "has an empty text"),
    ("extract: text not a string", lambda t: ["extract", write(t, "t.jsonl", '{"text": 5}\n'),
                                              "--schema", SPEC], 'must be {"text": "..."}'),
    ("extract: schema mismatch", lambda t: ["extract", write(t, "t.jsonl", '"hi"\n'),
                                            "--schema", f"{EXAMPLES}/medical_billing.py:Nope"],
     "no class 'Nope'"),
    ("extract: binary file", lambda t: ["extract", str(binary(t)), "--schema", SPEC],
     "is not UTF-8 text"),
    ("report: missing data", lambda t: ["report", str(t / "none.jsonl"), "--schema", SPEC],
     "data file not found"),
    ("report: not html", lambda t: ["report", write(t, "d.jsonl", "{}\n"), "--schema", SPEC,
                                    "-o", str(t / "r.pdf")], "the report is HTML"),
    ("report: bad rule", lambda t: ["report", write(t, "d.jsonl", "{}\n"), "--schema", SPEC,
                                    "--rule", "total_charge <"], "is not a valid expression"),
    ("report: rule names no field", lambda t: ["report", write(t, "d.jsonl", "{}\n"),
                                               "--schema", SPEC, "--rule", "x > 1"],
     "'x', which is not a field"),
    ("score: malformed row", lambda t: ["score", write(t, "l.jsonl", '{"text": "x"}\n'),
                                        "--schema", SPEC], 'must be {"text": "...", "gold"'),
    ("check: missing schema", lambda t: ["check", str(t / "none.json")], "schema file not found"),
    ("generate: malformed YAML job", lambda t: ["generate", write(t, "job.yaml", "n: 2\nschema: [x")],
     "is not valid YAML: line 2, column 11: expected ',' or ']'"),
    ("generate: empty examples file", lambda t: ["generate", SPEC, "--examples",
                                                 write(t, "e.jsonl", "\n")],
     "holds no records; add some or leave out --examples"),
    ("generate: output under a file", lambda t: ["generate", SPEC, "-o",
                                                 write(t, "afile", "x") + "/out.jsonl"],
     "afile is a file, not a directory"),
    ("report: columns not the schema's", lambda t: ["report", write(t, "d.csv", "a,b\n1,2\n"),
                                                    "--schema", SPEC],
     "has none of the schema's fields (patient_id"),
    ("roundtrip: a missing model after a good one",
     lambda t: ["roundtrip", SPEC, "-n", "2", "-m", "fake-fill", "-m", str(t / "missing.gguf"),
                "-o", str(t / "rt")], "GGUF file not found"),
    ("text: --base-url without an endpoint model",
     lambda t: ["text", write(t, "r.jsonl", '{"a": "b"}\n'), "--base-url", "http://127.0.0.1:9"],
     "--base-url needs an endpoint model"),
    ("extract: --base-url without an endpoint model",
     lambda t: ["extract", write(t, "t.jsonl", '"hi"\n'), "--schema", SPEC, "--base-url",
                "http://127.0.0.1:9"], "--base-url needs an endpoint model"),
    ("generate: job with unknown key", lambda t: ["generate", write(t, "job.yaml",
                                                                    f"schema: {SPEC}\nn_rows: 3")],
     "unknown setting 'n_rows'"),
    ("generate: output in a missing directory",
     lambda t: ["generate", SPEC, "-o", str(t / "no" / "out.jsonl")], "does not exist"),
    ("generate: bad sampler", lambda t: ["generate", write(
        t, "job.yaml", f"schema: {SPEC}\nsamplers:\n  patient_name: {{faker: nonsense}}")],
     "Faker has no provider 'nonsense'"),
    ("generate: missing context file", lambda t: ["generate", SPEC, "--context",
                                                  str(t / "personas.txt")],
     "context file not found"),
    ("generate: context table without a column", lambda t: ["generate", SPEC, "--context",
                                                            write(t, "p.csv", "persona\nx\n")],
     "name the column too"),
    ("generate: empty context file", lambda t: ["generate", SPEC, "--context",
                                                write(t, "p.txt", "\n \n")],
     "holds no lines to draw from"),
    ("generate: --ray without -o", lambda t: ["generate", SPEC, "--ray", "local"],
     "--ray writes shards to a directory"),
    ("generate: --ray into a file", lambda t: ["generate", SPEC, "--ray", "local", "-o",
                                               str(t / "out.parquet")], "not a file"),
    ("generate: --ray unknown format", lambda t: ["generate", SPEC, "--ray", "local", "-o",
                                                  str(t / "shards"), "--format", "csv"],
     "shards are parquet or jsonl (--format)"),
    ("check: bad examples", lambda t: ["check", SPEC, "--examples", write(
        t, "e.jsonl", '{"patient_id": "x"}\n')], "example #1 does not match"),
    ("generate: --concurrency on the embedded model",
     lambda t: ["generate", SPEC, "--concurrency", "8"], "--concurrency needs an endpoint model"),
]


def binary(tmp):
    path = tmp / "b.jsonl"
    path.write_bytes(b"\xff\xfe\x00\x01")
    return path


@pytest.mark.parametrize("case, make_args, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, case, make_args, message):
    args = make_args(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 2, (case, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message in lines[0]
    assert "Traceback" not in result.output
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before


@pytest.mark.parametrize("args, message", [
    (["generate", SPEC, "--colour", "blue"], "No such option: --colour"),
    (["generate"], "Missing argument 'schema'"),
    (["extract", "x.jsonl"], "Missing option '--schema'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["generate", SPEC, "--ray"], "--ray writes shards to a directory"),  # a bare --ray
    # option ranges, checked where the option is parsed
    (["generate", SPEC, "-n", "-5"], "Invalid value for '-n' / '--count'"),
    (["generate", SPEC, "--count", str(10**12)], "less than or equal to 1000000000"),
    (["generate", SPEC, "--near", "150"], "Invalid value for '--near'"),
    (["generate", SPEC, "--temperature", "-1"], "Invalid value for '--temperature'"),
    (["generate", SPEC, "--diversity", "2"], "Invalid value for '--diversity'"),
    (["generate", SPEC, "--max-attempts", "0"], "Invalid value for '--max-attempts'"),
    (["generate", SPEC, "--threads", "0"], "Invalid value for '--threads'"),
    (["generate", SPEC, "--ray", "local", "-o", "shards", "--actors", "0"],
     "Invalid value for '--actors'"),
    (["roundtrip", SPEC, "--count", "0"], "Invalid value for '-n' / '--count'"),
    (["report", "x.jsonl", "--schema", SPEC, "--near", "101"], "Invalid value for '--near'"),
    (["extract", "x.jsonl", "--schema", SPEC, "--min-confidence", "2"],
     "Invalid value for '--min-confidence'"),
])
def test_usage_errors_through_the_console_script_are_one_line(args, message):
    result = subprocess.run([sys.executable, "-c", "from simulacra.cli.app import main; main()",
                             *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    if "--ray writes" not in message:  # the parser's own errors point at the right help
        command = args[0] if args[0] != "frobnicate" else ""
        assert lines[0].endswith(f"(see: simulacra {command} --help)".replace("  ", " "))


def test_simulacra_alone_prints_the_help_and_no_error():
    result = subprocess.run([sys.executable, "-c", "from simulacra.cli.app import main; main()"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0
    assert "generate" in result.stdout and "Usage" in result.stdout
    assert "error" not in result.stderr


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
NOBODY_ENV = {**os.environ, "HOME": "/tmp", "SIMULACRA_CACHE_DIR": "/tmp"}


def nobody_can_run_simulacra() -> bool:
    """Root, setpriv, and a checkout (venv, source) that the user `nobody` can read."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    probe = subprocess.run([*NOBODY, "-c", "import simulacra"], capture_output=True, cwd="/",
                           env=NOBODY_ENV, timeout=60)
    return probe.returncode == 0


@pytest.mark.parametrize("target", ["dir", "file"])
def test_read_only_output_as_an_unprivileged_user(target):
    # Root ignores permissions, so the CLI runs as `nobody` (uid 65534) here, in a directory
    # it can reach (pytest's own tmp directories are private to root).
    if not nobody_can_run_simulacra():
        pytest.skip("needs root, setpriv and a checkout readable by the user nobody")
    base = Path(tempfile.mkdtemp(prefix="simulacra-ro-"))
    base.chmod(0o755)
    schema = base / "medical_billing.py"  # the checkout itself may be private to root
    shutil.copy(EXAMPLES / "medical_billing.py", schema)
    place = base / "ro"
    place.mkdir()
    out = place / "out.jsonl"
    if target == "file":  # a read-only file in a writable directory
        out.write_text('{"kept": true}\n')
        out.chmod(0o444)
        place.chmod(0o777)
    else:
        place.chmod(0o555)
    args = ["generate", f"{schema}:MedicalBilling", "-n", "2", "-m", "fake-fill", "-o", str(out)]
    if target == "file":
        args.append("--overwrite")
    result = subprocess.run([*NOBODY, "-c", "from simulacra.cli.app import main; main()", *args],
                            capture_output=True, text=True, cwd="/", timeout=120, env=NOBODY_ENV)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert ("is read-only" if target == "file" else "is not writable") in lines[0]
    assert (out.read_text() == '{"kept": true}\n') if target == "file" else not out.exists()
    place.chmod(0o755)
    shutil.rmtree(base)


def test_disk_full_mid_run_keeps_what_was_written(tmp_path, monkeypatch):
    from simulacra.sinks.jsonl import JsonlSink

    real_write = JsonlSink.write
    calls = {"n": 0}

    def write_until_full(self, record):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        real_write(self, record)

    monkeypatch.setattr(JsonlSink, "write", write_until_full)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["generate", SPEC, "-n", "10", "-m", "fake-fill", "--no-ledger",
                                      "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 1  # the run failed; the input was fine (2 is for bad input)
    assert "No space left on device" in result.stderr.strip().splitlines()[-1]
    assert len([json.loads(x) for x in out.read_text().splitlines()]) == 3

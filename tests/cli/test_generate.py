"""`simulacra generate`: real runs on the embedded model, and every bad input exits 2 in one line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from examples.medical_billing import MedicalBilling
from typer.testing import CliRunner

from simulacra.cli.app import app
from tests.conftest import EXAMPLES, _free_port

SPEC = f"{EXAMPLES}/medical_billing.py:MedicalBilling"
SHOTS = str(EXAMPLES / "medical_billing.jsonl")


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.mark.embedded
@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_generate_writes_n_valid_records(tmp_path, suffix):
    out = tmp_path / f"out.{suffix}"
    result = run("generate", SPEC, "-n", "20", "-o", str(out), "--examples", SHOTS,
                 "--subject", "medical_billing", "--seed", "7")
    assert result.exit_code == 0, result.output
    if suffix == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    elif suffix == "csv":
        rows = list(csv.DictReader(out.open()))
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == 20
    for row in rows:
        MedicalBilling.model_validate(row)
    assert "20 records written" in result.stderr and "records/s" in result.stderr
    assert "diversity steer 0.5" in result.stderr and "\nproblems: " in result.stderr
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == 20


def test_progress_without_a_terminal_prints_plain_lines_with_the_rate(tmp_path):
    out = tmp_path / "out.jsonl"
    result = run("generate", SPEC, "-n", "30", "-m", "fake-fill", "-o", str(out))
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("generating: ")]
    assert progress and progress[-1].startswith("generating: 30/30 · ")
    assert "rec/s · 30 tries" in progress[-1]


@pytest.mark.embedded
def test_generate_streams_jsonl_to_stdout(tmp_path):
    result = run("generate", SPEC, "-n", "2", "--examples", SHOTS, "--seed", "1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(MedicalBilling.model_validate_json(line) for line in lines)


def bad_examples(tmp_path):
    path = tmp_path / "bad_examples.jsonl"
    path.write_text('{"patient_id": "not a number"}\n')
    return str(path)


def invalid_json_schema(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "strin"}}}))
    return str(path)


def unsupported_schema(tmp_path):
    """A schema with no valid instance: the only kind `check` refuses (besides remote refs)."""
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "integer", "minimum": 3, "maximum": 1}}}))
    return str(path)


def string_schema(tmp_path):
    path = tmp_path / "strings.json"
    path.write_text(json.dumps({"type": "string", "format": "email"}))
    return str(path)


def existing_output(tmp_path):
    path = tmp_path / "exists.jsonl"
    path.write_text("precious\n")
    return str(path)


BAD_INPUTS = [
    ("missing schema file", lambda t: ["generate", "nope.py:X"], "schema file not found"),
    ("class not found", lambda t: ["generate", f"{EXAMPLES}/medical_billing.py:Missing"],
     "no class 'Missing'"),
    ("not a model", lambda t: ["generate", f"{EXAMPLES}/medical_billing.py:SUBJECT"],
     "is not a pydantic model"),
    ("invalid JSON Schema", lambda t: ["generate", invalid_json_schema(t)], "invalid JSON Schema"),
    ("schema without a valid instance", lambda t: ["generate", unsupported_schema(t)],
     "schema refused at properties.a: minimum 3 is above maximum 1"),
    ("non-object records to CSV", lambda t: ["generate", string_schema(t), "-o", str(t / "o.csv")],
     "not JSON objects, so they have no columns for .csv; write them to a .jsonl file"),
    ("output exists", lambda t: ["generate", SPEC, "-o", existing_output(t)],
     "exists: pass --overwrite"),
    ("unknown extension", lambda t: ["generate", SPEC, "-o", str(t / "out.xlsx")],
     "unknown output extension '.xlsx'"),
    ("unknown model", lambda t: ["generate", SPEC, "-m", "gpt-17"], "unknown model 'gpt-17'"),
    ("missing GGUF", lambda t: ["generate", SPEC, "-m", str(t / "none.gguf")], "GGUF file not found"),
    ("missing API key", lambda t: ["generate", SPEC, "-m", "openai/gpt-4o-mini"],
     "no API key: set OPENAI_API_KEY"),
    ("endpoint unreachable", lambda t: ["generate", SPEC, "-m", "openai/x", "--base-url",
                                        f"http://127.0.0.1:{_free_port()}/v1"], "is unreachable"),
    ("examples do not validate", lambda t: ["generate", SPEC, "--examples", bad_examples(t)],
     "example #1 does not match the schema MedicalBilling: patient_id"),
    ("examples file missing", lambda t: ["generate", SPEC, "--examples", str(t / "no.jsonl")],
     "examples file not found"),
    ("base-url without endpoint model", lambda t: ["generate", SPEC, "--base-url", "http://x"],
     "--base-url needs an endpoint model"),
]


@pytest.mark.parametrize("case, make_args, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, case, make_args, message):
    args = make_args(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    result = run(*args)
    assert result.exit_code == 2, (case, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written or lost


def test_check_lists_medical_billing_fields_as_enforced():
    result = run("check", SPEC, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["fields"] == dict.fromkeys(
        ["patient_id", "patient_name", "diagnosis_code", "procedure_code", "total_charge",
         "insurance_claim_amount"], "enforced")


def test_check_refuses_with_the_keyword_path(tmp_path):
    result = run("check", unsupported_schema(tmp_path))
    assert result.exit_code == 2
    assert "error: refused properties.a: minimum 3 is above maximum 1" in result.stderr


def test_check_lists_ignored_and_checked_keywords_with_paths(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"$schema": "http://json-schema.org/draft-04/schema#",
                                "self": {"vendor": "x"}, "type": "object", "properties": {
                                    "tags": {"type": "array", "uniqueItems": True,
                                             "decription": "typo"}}}))
    result = run("check", str(path))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "JSON Schema draft-04" in out
    ignored = out.split("ignored (")[1]
    assert "  self - not a JSON Schema keyword" in ignored
    assert "  properties.tags.decription" in ignored
    assert "  properties.tags.uniqueItems - validated after decoding" in out.split("checked (")[1]
    assert "distinct record" not in out


def test_check_says_when_a_schema_allows_only_a_few_records(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "object", "properties": {}, "additionalProperties": False}))
    result = run("check", str(path))
    assert result.exit_code == 0 and "allows 1 distinct record at most" in result.stdout


def test_models_lists_the_default_model_and_its_file():
    result = run("models", "--json")
    assert result.exit_code == 0
    listing = json.loads(result.stdout)
    assert listing["default"] == "gemma-270m"
    assert listing["embedded"]["installed"] is True and listing["embedded"]["size_mb"] > 100


def test_check_lists_the_rules_auto_would_apply():
    result = CliRunner().invoke(app, ["check", SPEC, "--examples",
                                      str(EXAMPLES / "medical_billing.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["proposed_rules"][0] == "insurance_claim_amount <= total_charge"


@pytest.mark.embedded
def test_a_process_spinning_beside_the_run_is_named_as_the_slowdown(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMULACRA_THREADS", raising=False)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        result = run("generate", SPEC, "-n", "8", "--examples", SHOTS, "--seed", "2",
                     "-o", str(tmp_path / "out.jsonl"))
    finally:
        spinner.kill()
        spinner.wait()
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("generating: ")]
    assert "other processes are using" in progress[-1]   # the progress line says why
    assert "other processes used" in result.stderr         # and so does the closing summary


def test_outputs_of_two_formats_in_one_folder_keep_their_own_ledgers(tmp_path):
    for suffix in ("csv", "jsonl"):
        result = run("generate", SPEC, "-n", "3", "-m", "fake-fill", "-o", str(tmp_path / f"o.{suffix}"))
        assert result.exit_code == 0, result.output
    ledgers = sorted(p.name for p in tmp_path.glob("*.ledger.jsonl"))
    assert ledgers == ["o.csv.ledger.jsonl", "o.jsonl.ledger.jsonl"]
    assert all(len((tmp_path / name).read_text().splitlines()) == 3 for name in ledgers)

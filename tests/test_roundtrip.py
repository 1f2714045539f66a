"""The round trip: scoring on a scripted backend, and the CLI on the real embedded model."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from simulacra.backends.fake import ScriptedBackend
from simulacra.cli.app import app
from simulacra.roundtrip import roundtrip, score_labelled
from tests.conftest import EXAMPLES


class Actor(BaseModel):
    Actor: str
    Film: list[str]


def test_roundtrip_on_a_scripted_backend_scores_each_field():
    fake = ScriptedBackend().enqueue(
        '{"Actor": "Tom Hanks", "Film": ["Big", "Splash"]}',        # generated record
        "Tom Hanks was great in Splash and in Big.",                 # its text, another order
        '{"Actor": "tom hanks", "Film": ["Big", "Splash"]}',          # extracted: case, order
    )
    report = roundtrip(Actor, 1, models=[fake], seed=1).as_dict()
    scores = report["models"]["scripted"]
    assert scores["fields"]["Actor"]["match_rate"] == 1.0
    assert scores["fields"]["Actor"]["exact_rate"] == 0.0
    assert scores["fields"]["Film"]["set_f1"] == 1.0 and scores["fields"]["Film"]["match_rate"] == 0.0
    assert scores["grounding_rate"] == 1.0 and scores["record_exact_rate"] == 0.0
    assert scores["failures"] == {"wrong value": 1}


def test_score_counts_parse_failures_and_missing_values():
    # attempt 1: text 1 -> no JSON, text 2 -> a record with no films; attempt 2: text 1 -> no JSON
    fake = ScriptedBackend().enqueue("no json", '{"Actor": "A", "Film": []}', "still none")
    rows = [{"text": "t1", "gold": {"Actor": "A", "Film": ["x"]}},
            {"text": "t2", "gold": {"Actor": "A", "Film": ["y"]}}]
    report = score_labelled(Actor, rows, model=fake).as_dict()["models"]["scripted"]
    assert report["failures"] == {"parse error": 1, "missing": 1}
    assert report["fields"]["Actor"]["match_rate"] == 0.5


@pytest.mark.embedded
def test_roundtrip_cli_writes_both_reports(tmp_path):
    result = CliRunner().invoke(app, [
        "roundtrip", f"{EXAMPLES}/medical_billing.py:MedicalBilling", "-n", "5",
        "--examples", str(EXAMPLES / "medical_billing.jsonl"), "-o", str(tmp_path / "rep")],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    fields = data["models"]["gemma-270m"]["fields"]
    assert set(fields) == {"patient_id", "patient_name", "diagnosis_code", "procedure_code",
                           "total_charge", "insurance_claim_amount"}
    assert all(0.0 <= f["match_rate"] <= 1.0 for f in fields.values())
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Match rate per field and model" in html and "plotly" in html
    # each stage says it started, so a long run is never silent (stderr is not a terminal here)
    assert "generating 5 records on gemma-270m" in result.stderr
    assert "gemma-270m: writing 5 texts, then extracting them" in result.stderr

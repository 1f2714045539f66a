"""`simulacra report` on hand-made data: each problem shows up in the numbers and the page."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from simulacra.cli.app import app
from tests.conftest import EXAMPLES

ROWS = [
    {"patient_id": 1, "patient_name": "Ana Lima", "diagnosis_code": "J20.9", "procedure_code": "99203",
     "total_charge": 500, "insurance_claim_amount": 350},
    {"patient_id": 1, "patient_name": "Ana Lima", "diagnosis_code": "J20.9", "procedure_code": "99203",
     "total_charge": 500, "insurance_claim_amount": 350},                        # exact duplicate
    {"patient_id": 2, "patient_name": "Ana Lim", "diagnosis_code": "J20.9", "procedure_code": "99203",
     "total_charge": 400, "insurance_claim_amount": 350},                        # near duplicate
    {"patient_id": 123456, "patient_name": "John Doe", "diagnosis_code": "J20.9",
     "procedure_code": "99203", "total_charge": 500, "insurance_claim_amount": 350},  # an example
    {"patient_id": 3, "patient_name": "Kofi Boateng", "diagnosis_code": "I10", "procedure_code": "99214",
     "total_charge": 100, "insurance_claim_amount": 900},                        # breaks the rule
    {"patient_id": "x"},                                                         # invalid
]


def test_report_counts_each_problem(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result = CliRunner().invoke(app, [
        "report", str(data), "--schema", f"{EXAMPLES}/medical_billing.py:MedicalBilling",
        "--examples", str(EXAMPLES / "medical_billing.jsonl"),
        "--rule", "insurance_claim_amount <= total_charge", "-o", str(tmp_path / "q.html")],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["rows"] == 6 and report["valid"] == 5
    assert report["exact_duplicate_rate"] == 0.2 and report["near_duplicate_rate"] == 0.2
    assert report["leaked_examples"] == 1 and report["closest_leak_similarity"] == 100.0
    assert report["rule_violations"] == {"insurance_claim_amount <= total_charge": 1}
    assert report["fields"]["patient_name"]["distinct"] == 4
    page = (tmp_path / "q.html").read_text()
    assert "total_charge: distribution" in page or "total_charge: frequencies" in page

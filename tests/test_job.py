"""Job files: YAML and TOML load the same job; a bad job file fails in one line."""

from __future__ import annotations

import random

import pytest

from simulacra.errors import UsageError
from simulacra.job import load_job
from tests.conftest import EXAMPLES

YAML = f"""
schema: {EXAMPLES}/medical_billing.py:MedicalBilling
n: 30
subject: medical_billing
examples: examples.jsonl
samplers:
  patient_name: {{faker: name}}
  patient_id: {{sequence: {{start: 1000}}}}
rules: ["insurance_claim_amount <= total_charge"]
near_duplicates: 85
context: {{lines: personas.txt}}
seed: 4
output: out.jsonl
"""

TOML = f"""
schema = "{EXAMPLES}/medical_billing.py:MedicalBilling"
n = 30
subject = "medical_billing"
examples = "examples.jsonl"
rules = ["insurance_claim_amount <= total_charge"]
near_duplicates = 85
context = {{lines = "personas.txt"}}
seed = 4
output = "out.jsonl"

[samplers]
patient_name = {{faker = "name"}}
patient_id = {{sequence = {{start = 1000}}}}
"""


@pytest.mark.parametrize("name, text", [("job.yaml", YAML), ("job.toml", TOML)])
def test_yaml_and_toml_jobs_load_the_same(tmp_path, name, text):
    (tmp_path / "examples.jsonl").write_text((EXAMPLES / "medical_billing.jsonl").read_text())
    (tmp_path / "personas.txt").write_text("a nurse in Oslo\n")
    (tmp_path / name).write_text(text)
    job = load_job(tmp_path / name)   # the context file is found beside the job file
    assert job.n == 30 and job.seed == 4 and job.near_duplicates == 85
    assert len(job.examples) == 3 and job.rules == ["insurance_claim_amount <= total_charge"]
    assert set(job.samplers) == {"patient_name", "patient_id"}
    assert job.output == str(tmp_path / "out.jsonl")
    assert job.context(random.Random(0), 0) == "a nurse in Oslo"


@pytest.mark.parametrize("text, message", [
    ("schema: [unclosed", "is not valid YAML"),
    ("n: 3", "needs a 'schema' setting"),
    ("schema: x.json\ncolour: blue", "unknown setting 'colour'"),
    ("schema: x.json\nsamplers: [1, 2]", "'samplers' must map field names"),
    ("- just\n- a list", "must hold a mapping"),
])
def test_bad_job_files(tmp_path, text, message):
    (tmp_path / "job.yaml").write_text(text)
    with pytest.raises(UsageError, match=message):
        load_job(tmp_path / "job.yaml")

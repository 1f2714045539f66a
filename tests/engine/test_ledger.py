"""The per-record ledger: one row per requested record, with the right outcome for each."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from simulacra.backends import registry
from simulacra.backends.fake import ScriptedBackend
from simulacra.cli.app import app

SCHEMA = '''
from pydantic import BaseModel, field_validator


class Person(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def no_bad(cls, value):  # the injected failing validator
        if value.startswith("Bad"):
            raise ValueError("names starting with Bad are refused")
        return value
'''


def test_ledger_has_one_row_per_requested_record(tmp_path):
    # Batch 1: Ann ok, Bad1 refused, Cy ok, Bad2 refused. Batch 2 (second tries): record 3
    # gets Bad3 (refused again: out of attempts), record 1 gets Dee (ok).
    fake = ScriptedBackend(['{"name": "Ann"}', '{"name": "Bad1"}', '{"name": "Cy"}',
                            '{"name": "Bad2"}', '{"name": "Bad3"}', '{"name": "Dee"}'])
    (tmp_path / "person.py").write_text(SCHEMA)
    out = tmp_path / "out.jsonl"
    registry.register("fake-ledger", lambda **options: fake)
    try:
        result = CliRunner().invoke(app, [
            "generate", f"{tmp_path}/person.py:Person", "-n", "4", "-m", "fake-ledger",
            "-o", str(out), "--max-attempts", "2", "--seed", "1"], catch_exceptions=False)
    finally:
        registry.unregister("fake-ledger")
    assert result.exit_code == 1  # a record failed: the run says so, and keeps the rest
    assert "1 of 4 records failed; 3 were kept" in result.stderr
    records = [json.loads(line)["name"] for line in out.read_text().splitlines()]
    rows = {r["index"]: r for r in map(json.loads,
                                       (tmp_path / "out.jsonl.ledger.jsonl").read_text().splitlines())}
    assert sorted(records) == ["Ann", "Cy", "Dee"]
    assert sorted(rows) == [0, 1, 2, 3]
    assert {i: r["outcome"] for i, r in rows.items()} == {
        0: "ok", 1: "ok", 2: "ok", 3: "failed: invalid"}
    assert {i: r["attempts"] for i, r in rows.items()} == {0: 1, 1: 2, 2: 1, 3: 2}
    refused = [t for r in rows.values() for t in r["tries"] if t["rejected"]]
    assert sorted(t["text"] for t in refused) == ['{"name": "Bad1"}', '{"name": "Bad2"}',
                                                  '{"name": "Bad3"}']
    assert all("names starting with Bad are refused" in t["rejected"] for t in refused)
    kept_plus_failed = len(records) + sum(r["outcome"] != "ok" for r in rows.values())
    assert kept_plus_failed == 4


def test_a_record_reusing_an_example_value_is_flagged(tmp_path):
    from simulacra import Generator

    fake = ScriptedBackend(['{"name": "Ann Lee", "city": "Oslo"}',
                            '{"name": "Bo Chen", "city": "Lima"}'])
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "city": {"type": "string"}}}
    gen = Generator(schema, model=fake, examples=[{"name": "Eva Ruiz", "city": "Oslo"}], seed=1)
    rows = []
    kept = [o.data for o in gen.outcomes(2, rows.append)]
    assert len(kept) == 2
    flags = {row["index"]: row["flags"] for row in rows}
    assert sorted(flags.values()) == [[], ["example value: city"]]

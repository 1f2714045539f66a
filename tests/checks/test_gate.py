"""Each check on hand-made data: a duplicate, a near duplicate, a leaked example, a broken rule."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from simulacra import Generator
from simulacra.backends.fake import ScriptedBackend
from simulacra.checks.gate import RecordGate
from simulacra.checks.rules import parse_rules
from simulacra.errors import UsageError

EXAMPLE = {"name": "John Doe", "code": "J20.9", "total": 500.0, "claim": 350.0}


class Bill(BaseModel):
    name: str
    code: str
    total: float
    claim: float


def test_rules_parse_evaluate_and_refuse_code():
    [rule] = parse_rules(["claim <= total and total > 0"], {"claim", "total"})
    assert rule.holds({"claim": 1, "total": 2}) and not rule.holds({"claim": 3, "total": 2})
    with pytest.raises(UsageError, match="not a valid expression"):
        parse_rules(["claim <="])
    with pytest.raises(UsageError, match="may only use fields"):
        parse_rules(["__import__('os').system('true')"])
    with pytest.raises(UsageError, match="'claimz', which is not a field"):
        parse_rules(["claimz <= total"], {"claim", "total"})


def test_gate_rejects_each_kind_with_its_reason():
    gate = RecordGate(parse_rules(["claim <= total"]), examples=[EXAMPLE], near_threshold=90)
    assert gate.reject_reason({**EXAMPLE, "claim": 900.0}).startswith("rule:")
    assert gate.reject_reason(EXAMPLE).startswith("leak: the record copies")
    assert gate.reject_reason({**EXAMPLE, "name": "John Doe.", "total": 510.0}).startswith("leak: ")
    first = {"name": "Amira Haddad", "code": "K35.8", "total": 900.0, "claim": 700.0}
    assert gate.reject_reason(first) is None
    gate.admit(first)
    assert gate.reject_reason(dict(first)).startswith("duplicate:")
    assert gate.reject_reason({**first, "name": "Amira Hadad", "total": 950.0}).startswith("near-duplicate:")
    assert gate.reject_reason({**first, "name": "Zoe Park", "code": "E11.9"}) is None
    assert 0 < gate.closest_leak < 90


def test_generator_regenerates_rejected_records_and_counts_reasons():
    fake = ScriptedBackend().enqueue(
        json.dumps({**EXAMPLE, "claim": 900.0}),      # breaks the rule
        json.dumps(EXAMPLE),                           # copies the example
        json.dumps({**EXAMPLE, "name": "Ines Sousa", "code": "M54.5"}),
        json.dumps({**EXAMPLE, "name": "Ines Souza", "code": "M54.5"}),  # near duplicate
        json.dumps({**EXAMPLE, "name": "Kofi Mensah", "code": "I10"}),
    )
    gen = Generator(Bill, model=fake, examples=[EXAMPLE], rules=["claim <= total"],
                    near_threshold=90, seed=1)
    records = gen.generate(2)
    assert [r.name for r in records] == ["Ines Sousa", "Kofi Mensah"]
    assert gen.stats.rejected == {"rule": 1, "leak": 1, "near-duplicate": 1}


def test_sampled_values_are_forced_in_the_decoding_schema():
    from simulacra.samplers import sequence

    fake = ScriptedBackend().enqueue(*[json.dumps({**EXAMPLE, "name": f"N{i}", "code": f"C{i}"})
                                       for i in range(2)])
    Generator(Bill, model=fake, samplers={"code": sequence(7)}, seed=1).generate(2)
    assert [r.json_schema["properties"]["code"] for r in fake.history] == [{"const": 7}, {"const": 8}]
    assert fake.history[0].json_schema["properties"]["name"]["type"] == "string"


def test_sampler_for_an_unknown_field_is_refused():
    from simulacra.samplers import uuid4

    with pytest.raises(UsageError, match="sampler for 'nope', which is not a field of Bill"):
        Generator(Bill, model=ScriptedBackend(), samplers={"nope": uuid4()})

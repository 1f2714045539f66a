"""Records written as rows (engine/surface.py, `rows=True` / `--rows`): which schemas, the
row schema, and the way back to the object; then a run on the real model."""

import json

import pytest
from pydantic import BaseModel

from simulacra import Generator
from simulacra.backends.base import Capabilities
from simulacra.backends.fake import ScriptedBackend
from simulacra.engine.diversity import free_text_fields
from simulacra.engine.surface import RowSurface

BILL = {"type": "object", "additionalProperties": False, "required": ["id", "name", "total"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                       "total": {"type": "number"}, "note": {"type": "string"}}}


def test_a_plain_object_with_few_free_text_fields_becomes_a_row():
    row = RowSurface.for_schema(BILL, free_text_fields(BILL))
    assert row is not None and row.names == ("id", "name", "total", "note")
    schema = row.schema(BILL)
    assert schema["minItems"] == schema["maxItems"] == 4
    assert schema["prefixItems"][3] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    # an optional field that cannot be null is left out when the row says null
    assert row.record([7, "Ada", 9.5, None]) == {"id": 7, "name": "Ada", "total": 9.5}
    assert row.record([7, "Ada"]) == [7, "Ada"]   # the validator rejects it in its words
    assert row.render({"id": 7, "name": "Ada", "total": 9.5}) == '[7, "Ada", 9.5, null]'


@pytest.mark.parametrize("change", [
    {"additionalProperties": True},
    {"if": {"required": ["note"]}, "then": {"required": ["total"]}},
    {"minProperties": 3},
    {"properties": {"only": {"type": "integer"}}},
    {"properties": {f"f{i}": {"type": "integer"} for i in range(13)}},
    {"properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "integer"}}},
])
def test_objects_a_row_cannot_stand_for_stay_objects(change):
    schema = {**BILL, **change}
    assert RowSurface.for_schema(schema, free_text_fields(schema)) is None


class Bill(BaseModel):
    id: int
    name: str
    total: float


def test_objects_by_default():
    fake = ScriptedBackend(['{"id": 1, "name": "Ada", "total": 2.5}'],
                           capabilities=Capabilities(grammar=True, batch=1))
    Generator(Bill, model=fake, seed=1, examples=[{"id": 9, "name": "Zed", "total": 1.0}]
              ).generate(1)
    assert fake.history[0].json_schema["type"] == "object" and "row" not in fake.history[0].extra
    # objects in the compact layout, examples and reply alike (a row keeps its spaces)
    assert fake.history[0].separators == (",", ":")
    assert '{"id":9,"name":"Zed","total":1.0}' in fake.history[0].prompt


def test_asked_for_rows_a_grammar_backend_gets_rows_and_records_come_back_as_objects():
    fake = ScriptedBackend(['[1, "Ada", 2.5]', '[2, "Bo", 3.0]'],
                           capabilities=Capabilities(grammar=True, batch=2))
    records = Generator(Bill, model=fake, seed=1, rows=True,
                        examples=[{"id": 9, "name": "Zed", "total": 1.0}]).generate(2)
    assert [r.model_dump() for r in records] == [{"id": 1, "name": "Ada", "total": 2.5},
                                                 {"id": 2, "name": "Bo", "total": 3.0}]
    request = fake.history[0]
    assert request.json_schema["type"] == "array" and request.extra["row"] == ("id", "name",
                                                                               "total")
    assert '[9, "Zed", 1.0]' in request.prompt and "the values of id, name, total" in \
        request.prompt
    assert request.separators == (", ", ": ")


def test_rows_stop_when_the_first_ones_come_out_implausible():
    from simulacra.engine.run import ROW_TRIAL

    junk = [f'[{i}, "{i}{i}{i}", 1.0]' for i in range(ROW_TRIAL)]   # a name with no letters
    good = [json.dumps({"id": 100 + i, "name": f"Name {chr(65 + i)}", "total": 1.0})
            for i in range(8)]
    fake = ScriptedBackend(junk + good, capabilities=Capabilities(grammar=True, batch=4))
    gen = Generator(Bill, model=fake, seed=1, max_attempts=ROW_TRIAL, rows=True,
                    examples=[{"id": 9, "name": "Zed Bloom", "total": 1.0}])
    list(gen.outcomes(2))
    kinds = ["row" if r.json_schema["type"] == "array" else "object" for r in fake.history]
    assert kinds[:ROW_TRIAL] == ["row"] * ROW_TRIAL and kinds[-1] == "object"


@pytest.mark.embedded
def test_medical_billing_rows_on_the_embedded_model(embedded):
    from examples.medical_billing import EXAMPLES, SUBJECT, MedicalBilling

    class Recording:   # the embedded backend, noting what it was asked
        def __init__(self, backend):
            self.backend, self.requests = backend, []

        def __getattr__(self, name):
            return getattr(self.backend, name)

        def stream(self, requests):
            self.requests += requests
            yield from self.backend.stream(requests)

    recording = Recording(embedded)
    gen = Generator(MedicalBilling, model=recording, examples=EXAMPLES, subject=SUBJECT, seed=5,
                    rows=True)
    records = [o.data for o in gen.outcomes(4)]
    assert len(records) == 4 and all(set(r) == set(EXAMPLES[0]) for r in records)
    assert len({r["patient_name"] for r in records}) == 4
    assert {r.json_schema["type"] for r in recording.requests} == {"array"}

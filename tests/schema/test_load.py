"""Loading schemas from every spec form, and the one-line errors for bad specs."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from simulacra import load_schema
from simulacra.errors import SchemaError, UnsupportedSchemaError
from tests.conftest import DATA, EXAMPLES


def test_pydantic_file_spec_gives_fields_and_validator():
    schema = load_schema(f"{EXAMPLES}/medical_billing.py:MedicalBilling")
    assert schema.name == "MedicalBilling"
    assert [f.name for f in schema.fields] == [
        "patient_id", "patient_name", "diagnosis_code", "procedure_code", "total_charge",
        "insurance_claim_amount"]
    record = schema.validate('{"patient_id": 1, "patient_name": "A", "diagnosis_code": "X",'
                             ' "procedure_code": "1", "total_charge": 2, "insurance_claim_amount": 1}')
    assert record.patient_id == 1 and type(record).__name__ == "MedicalBilling"


def test_module_spec():
    schema = load_schema("tests.data.rich_models:Customer")
    fields = {f.name: f for f in schema.fields}
    assert fields["name"].description == "full name"
    assert fields["channel"].type == 'one of "web", "phone", "store"'
    assert fields["plan"].type == 'one of "basic", "pro"'  # resolved through $defs
    assert not fields["referrer"].required


def test_json_schema_file():
    schema = load_schema(DATA / "order.schema.json")
    assert schema.name == "Order" and schema.model is None
    assert "tags" not in schema.json_schema["properties"]
    with pytest.raises(Exception) as info:
        schema.validate({"order_id": "x"})
    assert "required" in str(info.value)


def test_class_object_and_dict():
    class Point(BaseModel):
        x: int

    assert load_schema(Point).fields[0].name == "x"
    assert load_schema({"type": "object", "properties": {"y": {"type": "string"}}}).fields[0].type == "string"


@pytest.mark.parametrize("spec, message", [
    ("missing.py:Thing", "schema file not found: missing.py"),
    ("missing.json", "schema file not found: missing.json"),
    (f"{EXAMPLES}/medical_billing.py:Nope", "no class 'Nope'"),
    (f"{EXAMPLES}/medical_billing.py:EXAMPLES", "is not a pydantic model"),
    ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    ("justaword", "neither a .json file nor 'module:Class'"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(SchemaError) as info:
        load_schema(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_json_and_invalid_schema(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="is not valid JSON"):
        load_schema(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "strin"}}}))
    with pytest.raises(SchemaError, match="invalid JSON Schema at properties/a/type"):
        load_schema(wrong)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(SchemaError, match=r"an object or a boolean\), not a list"):
        load_schema(listed)


def test_any_root_loads_and_says_whether_records_are_objects(tmp_path):
    scalar = tmp_path / "scalar.json"
    scalar.write_text(json.dumps({"type": "string", "maxLength": 5}))
    schema = load_schema(scalar)
    assert not schema.is_object and schema.fields == []
    assert schema.validate("abc") == "abc"
    merged = load_schema({"allOf": [{"$ref": "#/$defs/base"}, {"properties": {"b": {"type": "integer"}},
                                                                 "required": ["b"]}],
                          "$defs": {"base": {"type": "object", "properties": {"a": {"type": "string"}}}}})
    assert merged.is_object
    assert [(f.name, f.required) for f in merged.fields] == [("a", False), ("b", True)]


def test_schema_without_a_valid_instance_is_refused_with_its_path():
    js = {"type": "object", "required": ["age"], "properties": {"age": {
        "type": "integer", "minimum": 10, "maximum": 5}}}
    with pytest.raises(UnsupportedSchemaError) as info:
        load_schema(js)
    assert info.value.path == "properties.age"
    assert "minimum 10 is above maximum 5" in str(info.value)
    assert "\n" not in str(info.value)


def test_pydantic_type_without_json_schema_is_refused_naming_it():
    class Opaque:
        pass

    class Holder(BaseModel):
        model_config = {"arbitrary_types_allowed": True}
        thing: Opaque

    with pytest.raises(SchemaError, match="Holder cannot be expressed as JSON Schema"):
        load_schema(Holder)

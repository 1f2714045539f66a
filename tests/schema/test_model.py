"""Validation errors, decoding bounds and the support report."""

from __future__ import annotations

import pytest

from simulacra import check_support, load_schema
from simulacra.schema import RecordInvalid
from simulacra.schema.model import (
    INT_SPAN,
    LIST_CAP,
    MAX_ITEMS,
    MAX_STRING,
    STRING_CAP,
    longest_lists,
)


def test_validation_errors_name_the_path():
    schema = load_schema("tests.data.rich_models:Customer")
    with pytest.raises(RecordInvalid) as info:
        schema.validate({"age": 5})
    assert any(e.startswith("age:") for e in info.value.errors)
    assert any(e.startswith("name:") for e in info.value.errors)


def test_decoding_schema_bounds_strings_integers_arrays_and_closes_objects():
    js = {"type": "object", "properties": {
        "free": {"type": "string"},
        "huge": {"type": "string", "maxLength": 32767},
        "count": {"type": "integer"},
        "low": {"type": "integer", "minimum": 3},
        "tags": {"type": "array", "items": {"type": "string"}},
        "day": {"type": "string", "format": "date"},
        "sub": {"type": "object", "properties": {"type": {"type": "string"}}},
    }}
    schema = load_schema(js)
    dec = schema.decoding_schema()["properties"]
    assert dec["free"]["maxLength"] == MAX_STRING
    assert dec["huge"]["maxLength"] == STRING_CAP
    assert (dec["count"]["minimum"], dec["count"]["maximum"]) == (-INT_SPAN, INT_SPAN)
    assert dec["low"]["maximum"] == 3 + INT_SPAN
    assert dec["tags"]["maxItems"] == MAX_ITEMS and dec["tags"]["items"]["maxLength"] == MAX_STRING
    assert dec["day"]["pattern"].startswith("^") and "format" not in dec["day"]  # everyday dates
    assert dec["sub"]["additionalProperties"] is False
    assert dec["sub"]["properties"]["type"]["maxLength"] == MAX_STRING  # a field named "type"
    assert "maxLength" not in schema.json_schema["properties"]["free"]  # the contract is untouched


def test_lists_are_as_long_as_the_examples_longest_where_the_schema_sets_no_bound():
    js = {"type": "object", "properties": {
        "films": {"type": "array", "items": {"type": "string"}},
        "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "pair": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
        "short": {"type": "array", "items": {"type": "integer"}},
        "cast": {"type": "object", "properties": {"names": {"type": "array"}}},
    }}
    examples = [{"films": list("abcdefgh"), "tags": list("abcdef"), "pair": [1, 2],
                 "short": [1, 2], "cast": {"names": list("abcdefg")}},
                {"films": ["one"], "tags": None, "pair": [], "short": [],
                 "cast": {"names": ["x"] * 99}}]
    lengths = longest_lists(examples)
    # lists no longer than the default, and bounds the schema sets, are left alone
    assert lengths == {"films": 8, "tags": 6, "names": LIST_CAP}
    dec = load_schema(js).decoding_schema(list_lengths=lengths)["properties"]
    assert dec["films"]["maxItems"] == 8
    assert dec["tags"]["anyOf"][0]["maxItems"] == 6   # Optional[list[str]]
    assert dec["pair"]["maxItems"] == 2 and dec["short"]["maxItems"] == MAX_ITEMS
    assert dec["cast"]["properties"]["names"]["maxItems"] == LIST_CAP
    assert load_schema({"type": "array"}).decoding_schema(
        list_lengths=longest_lists([list(range(7))]))["maxItems"] == 7   # a list at the root


def test_support_report_classifies_keywords():
    js = {"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 0, "multipleOf": 5},
        "b": {"type": "string", "format": "hostname"},
        "c": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "d": {"type": "string", "description": "shown in the prompt"},
    }, "required": ["a"], "additionalProperties": False}
    report = check_support(js)
    # multipleOf and hostname are in the grammar now; uniqueItems is checked after decoding
    assert report.by_field() == {"a": "enforced", "b": "enforced", "c": "checked", "d": "enforced"}
    assert not report.refused
    medical = load_schema("examples.medical_billing:MedicalBilling")
    assert set(check_support(medical.json_schema).by_field().values()) == {"enforced"}


def test_schema_support_doc_is_generated_from_the_code():
    from simulacra.schema.support import support_table
    from tests.conftest import ROOT

    assert (ROOT / "docs" / "schema-support.md").read_text().endswith(support_table())


def test_check_states_how_each_constraint_keyword_is_handled():
    from tests.conftest import DATA

    schema = load_schema(DATA / "order.schema.json")
    handling = {(e.path, e.how) for e in check_support(schema.json_schema).entries}
    for path in ("properties.items.minItems", "properties.items.maxItems",
                 "properties.items.items.properties.quantity.minimum",
                 "properties.items.items.properties.quantity.maximum", "required",
                 "properties.note.anyOf", "properties.customer.properties.email.pattern",
                 "additionalProperties", "properties.placed_on.format"):
        assert (path, "enforced") in handling, path


def test_looping_detection():
    from simulacra.backends._decode import _looping

    assert _looping([5] * 40) and _looping([1, 2, 3] * 12)
    assert _looping([9, 1, 6, 0, 0, 11] * 6)                # `1600, ` repeated: six tokens
    assert not _looping(list(range(40))) and not _looping([7] * 10)


def test_decoding_drops_enum_values_a_sibling_not_excludes():
    schema = load_schema({"type": "object", "properties": {
        "color": {"enum": ["red", "green", "blue"], "not": {"const": "red"}},
        "size": {"enum": ["s", "m", "l"], "not": {"enum": ["s", "l"]}},
        "kept": {"enum": ["a"], "not": {"const": "a"}},   # nothing left: left as written
        "level": {"enum": [1, 2, True], "not": {"const": 1.0}}},  # 1.0 is 1; true is not
        "required": ["color", "size", "kept", "level"]})
    props = schema.decoding_schema()["properties"]
    assert props["color"]["enum"] == ["green", "blue"]
    assert props["size"]["enum"] == ["m"]
    assert props["kept"]["enum"] == ["a"]
    assert props["level"]["enum"] == [2, True]


def test_decoding_turns_property_names_into_pattern_properties():
    schema = load_schema({"type": "object", "propertyNames": {"pattern": "^[a-z]{1,8}$"},
                          "additionalProperties": {"type": "integer"}})
    node = schema.decoding_schema()
    assert list(node["patternProperties"]) == ["^[a-z]{1,8}$"]
    assert node["patternProperties"]["^[a-z]{1,8}$"]["type"] == "integer"   # bounded too
    assert node["additionalProperties"] is False
    named = load_schema({"type": "object", "properties": {"a": {"type": "string"}},
                         "propertyNames": {"pattern": "^[a-z]$"}})
    assert "patternProperties" not in named.decoding_schema()   # named properties: as is


SYMBOLS = {"type": "object", "required": ["group"],
           "properties": {"group": {"type": "string", "maxLength": 12},
                          "note": {"type": "string", "maxLength": 20}},
           "anyOf": [{"properties": {"symbol": {"type": "string", "maxLength": 4}},
                      "required": ["symbol"]},
                     {"required": ["symbols"]}]}


def test_an_object_whose_parts_only_name_properties_is_closed_to_all_their_names():
    decoding = load_schema(SYMBOLS).decoding_schema()
    assert decoding["additionalProperties"] is False
    assert set(decoding["properties"]) == {"group", "note", "symbol", "symbols"}
    assert decoding["properties"]["symbols"] == {}   # what it holds is the part's to say
    assert "additionalProperties" not in decoding["anyOf"][0]   # the parts stay open


def test_members_of_a_union_that_only_says_object_are_closed():
    place = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    hotel = {"type": "object", "properties": {"hotel": {"type": "string"}}, "required": ["hotel"]}
    schema = {"type": "object", "properties": {
        "where": {"type": "object", "oneOf": [{"$ref": "#/$defs/place"}, {"$ref": "#/$defs/hotel"}]},
        "home": {"$ref": "#/$defs/place"}},
        "$defs": {"place": place, "hotel": hotel}}
    decoding = load_schema(schema).decoding_schema()
    assert decoding["$defs"]["place"]["additionalProperties"] is False
    assert decoding["$defs"]["hotel"]["additionalProperties"] is False
    # a sibling that names a property of its own keeps the members open
    schema["properties"]["where"]["required"] = ["note"]
    decoding = load_schema(schema).decoding_schema()
    assert "additionalProperties" not in decoding["$defs"]["hotel"]


@pytest.mark.embedded
def test_the_embedded_model_writes_only_the_names_such_an_object_has(embedded):
    import jsonschema

    from simulacra import Generator

    gen = Generator(SYMBOLS, model=embedded, seed=4, max_attempts=4)
    records = gen.generate(4)
    assert len(records) == 4
    for record in records:
        assert jsonschema.Draft202012Validator(SYMBOLS).is_valid(record), record
        assert set(record) <= {"group", "note", "symbol", "symbols"}, record

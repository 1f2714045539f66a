"""The diversity steer's bookkeeping: prefix counts, which fields are steered, bounds."""

from simulacra.checks.rules import parse_rules
from simulacra.engine.diversity import (
    EXAMPLE_WEIGHT,
    MAX_PREFIX,
    FieldCounts,
    NumericBound,
    build_steer,
    free_text_fields,
    numeric_bounds,
    raw_value,
    steered_fields,
)


def test_share_is_how_often_the_continuation_leads_to_one_value_already_made():
    counts = FieldCounts()
    for name in ["John Doe", "John Doe", "John Roe", "Jane Poe"]:
        counts.add(name.encode())
    assert counts.count(b"") == 4
    assert counts.count(b"John") == 3
    assert counts.share(b"", b"John") == 2 / 5           # "John Doe", twice
    assert counts.share(b"John ", b"D") == 2 / 4
    assert counts.share(b"John ", b"R") == 1 / 4
    assert counts.share(b"John Doe", b'"') == 2 / 3      # the exact repeat, ended
    assert counts.share(b"", b"Mary") == 0


def test_a_start_many_different_values_share_costs_little():
    counts = FieldCounts()
    for code in ["99203", "99213", "99214", "99215", "99212", "10021"]:
        counts.add(code.encode())
    assert counts.share(b"", b"99") == 1 / 7
    assert counts.share(b"9921", b"3") == 1 / 5


def test_long_values_are_known_by_their_opening():
    counts = FieldCounts()
    opening = "x" * MAX_PREFIX
    counts.add((opening + " one").encode())
    counts.add((opening + " two").encode())
    assert counts.share(b"", b"x") == 2 / 3
    assert counts.share(opening.encode(), b" t") == 0


def test_steered_fields_skip_enums_constants_booleans_and_narrow_numbers():
    schema = {"type": "object", "$defs": {"Item": {"type": "object", "properties": {
        "label": {"type": "string"}, "qty": {"type": "integer", "minimum": 1, "maximum": 9}}}},
        "properties": {
            "name": {"type": "string"}, "sex": {"enum": ["f", "m"]}, "kind": {"const": "a"},
            "ok": {"type": "boolean"}, "price": {"type": "number"},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
            "nick": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "code": {"type": "string", "maxLength": 2},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}}}
    assert sorted(steered_fields(schema)) == sorted([
        ("name",), ("price",), ("age",), ("nick",), ("items", "[]", "label")])


def test_free_text_fields_leave_out_strings_the_schema_shapes():
    schema = {"type": "object", "properties": {
        "title": {"type": "string"}, "when": {"type": "string", "format": "date"},
        "sku": {"type": "string", "pattern": "^[A-Z]{3}$"}, "n": {"type": "integer"}}}
    assert free_text_fields(schema) == [("title",)]


def test_examples_count_with_their_weight():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    steer = build_steer(schema, 0.5, examples=[{"name": "Ann"}])
    assert steer.fields[("name",)].count(b'Ann"') == EXAMPLE_WEIGHT


def test_no_steer_at_diversity_zero_without_bounds():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    assert build_steer(schema, 0.0) is None


def test_raw_values_are_written_as_the_decoder_writes_them():
    assert raw_value('say "hi"') == b'say \\"hi\\"'
    assert raw_value(150.0) == b"150"
    assert raw_value(2.5) == b"2.5"
    assert raw_value(True) is None


def test_an_ordering_rule_bounds_each_field_by_the_other():
    schema = {"type": "object", "properties": {"claim": {"type": "number"},
                                               "total": {"type": "number"}}}
    rules = parse_rules(["claim <= total", "claim != 3"])
    bounds = numeric_bounds(rules, [("claim",), ("total",)])
    assert bounds == [NumericBound(("claim",), "<=", ("total",)),
                      NumericBound(("total",), ">=", ("claim",))]
    assert build_steer(schema, 0.0, rules=rules).bounds == bounds


def test_an_upper_bound_holds_for_prefixes_a_lower_bound_only_at_the_end():
    upper = NumericBound(("a",), "<=", ("b",))
    assert upper.allows(12, 150, final=False) and not upper.allows(151, 150, final=False)
    strict = NumericBound(("a",), "<", ("b",))
    assert strict.allows(150, 150, final=False) and not strict.allows(150, 150, final=True)
    lower = NumericBound(("b",), ">=", ("a",))
    assert lower.allows(1, 150, final=False) and not lower.allows(1, 150, final=True)

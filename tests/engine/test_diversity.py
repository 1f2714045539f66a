"""The diversity steer's bookkeeping: prefix counts, which fields are steered, bounds; and
on the embedded model, what it does to a run."""

import math
from collections import Counter

import pytest
from examples.medical_billing import EXAMPLES as MEDICAL_EXAMPLES
from examples.medical_billing import MedicalBilling

from simulacra import Generator
from simulacra.checks.rules import parse_rules
from simulacra.engine.diversity import (
    COMPLETION_WEIGHT,
    DEFAULT_DIVERSITY,
    EXAMPLE_WEIGHT,
    MAX_PREFIX,
    REPEAT_WEIGHT,
    FieldCounts,
    NumericBound,
    build_steer,
    free_text_fields,
    numeric_bounds,
    raw_value,
    steered_fields,
)
from simulacra.engine.drafts import MIN_RUN


def test_pressure_is_how_strongly_the_continuation_leads_to_a_value_already_made():
    counts = FieldCounts()
    for name in ["John Doe", "John Doe", "John Roe", "Jane Poe"]:
        counts.add(name.encode())
    assert counts.count(b"") == 4
    assert counts.count(b"John") == 3
    twice = REPEAT_WEIGHT * math.log(2)
    assert counts.pressure(b"", b"John") == pytest.approx(2 / 5 + twice)   # "John Doe", twice
    assert counts.pressure(b"John ", b"D") == pytest.approx(2 / 4 + twice)
    assert counts.pressure(b"John ", b"R") == 1 / 4
    assert counts.pressure(b"John Doe", b'"') == pytest.approx(2 / 3 + twice)  # ended: a repeat
    assert counts.pressure(b"", b"Mary") == 0


def test_a_list_opened_after_a_repeat_costs_what_ending_there_costs():
    """The closing quote after a favourite is penalized, and a comma is not a way around it:
    "Ben Affleck, Jennifer Lopez" is not another actor."""
    counts = FieldCounts()
    for name in ["Ben Affleck", "Ben Affleck", "Tom Hardy"]:
        counts.add(name.encode())
    ending = counts.pressure(b"Ben Affleck", b'"')
    assert ending > 0
    for joined in (b",", b", Jennifer", b";", b" and", b" & Co"):
        assert counts.pressure(b"Ben Affleck", joined) == ending
    assert counts.pressure(b"Ben Affleck", b" Jr") == 0    # another name: free
    assert counts.pressure(b"Ben", b",") == 0              # not a whole value made


def test_a_field_whose_values_hold_lists_may_go_on_with_one():
    counts = FieldCounts()
    for cast in ["Ben Affleck", "Ben Affleck", "Matt Damon, Ben Affleck"]:
        counts.add(cast.encode())
    assert counts.pressure(b"Ben Affleck", b", Matt") == 0


def test_no_continuation_is_penalized_more_than_the_bound_the_decoder_gathers_by():
    import random

    rng = random.Random(2)
    counts = FieldCounts()
    for _ in range(300):
        counts.add("".join(rng.choice("ab ") for _ in range(rng.randint(1, 6))).encode())
    for prefix in [b"", b"a", b"ab", b"b b", b"zz"]:
        bound = counts.most_pressure(prefix)
        for _ in range(200):
            more = "".join(rng.choice('ab "') for _ in range(rng.randint(1, 3))).encode()
            assert counts.pressure(prefix, more) <= bound + 1e-12
    assert counts.most_pressure(b"zz") == 0   # a new prefix: nothing to lean away from


def test_a_start_many_different_values_share_costs_little():
    counts = FieldCounts()
    for code in ["99203", "99213", "99214", "99215", "99212", "10021"]:
        counts.add(code.encode())
    assert counts.pressure(b"", b"99") == 1 / 7
    assert counts.pressure(b"9921", b"4") == 1 / 5 + COMPLETION_WEIGHT   # spells out "99214"


def test_spelling_out_a_value_already_made_costs_before_its_closing_quote():
    counts = FieldCounts()
    for name in ["Robert", "Mary", "Robert Smith", "Roberta"]:
        counts.add(name.encode())
    # "Robert" is the whole of one of the three values through it: a third of the penalty
    assert counts.pressure(b"", b"Robert") == pytest.approx(1 / 5 + COMPLETION_WEIGHT / 3)
    assert counts.pressure(b"", b"Mary") == pytest.approx(1 / 5 + COMPLETION_WEIGHT)
    assert counts.pressure(b"", b"Ma") == 1 / 5           # not a whole value yet
    assert counts.pressure(b"Mary", b'"') == 1 / 2        # the closing quote: its share only
    assert counts.pressure(b"", b"Mark") == 0             # a new name costs nothing


def test_long_values_are_known_by_their_opening():
    counts = FieldCounts()
    opening = "x" * MAX_PREFIX
    counts.add((opening + " one").encode())
    counts.add((opening + " two").encode())
    assert counts.pressure(b"", b"x") == pytest.approx(2 / 3 + REPEAT_WEIGHT * math.log(2))
    assert counts.pressure(opening.encode(), b" t") == 0


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


def test_the_tag_of_a_tagged_union_is_steered_and_other_enums_are_not():
    def shape(kind):
        return {"type": "object", "properties": {"kind": {"enum": [kind]}, "size": {"enum": [1, 2]}}}
    schema = {"type": "object", "$defs": {"square": shape("square"), "circle": shape("circle")},
              "properties": {"shapes": {"type": "array", "items": {"oneOf": [
                  {"$ref": "#/$defs/square"}, {"$ref": "#/$defs/circle"}]}}}}
    assert steered_fields(schema) == [("shapes", "[]", "kind")]   # `size` is shared: no tag
    schema["properties"]["shapes"]["items"] = {"anyOf": [shape("square"), shape("circle")]}
    assert steered_fields(schema) == []


def test_a_schema_that_reaches_itself_without_nesting_is_walked_once():
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}},
              "$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "string"}]}}}
    assert steered_fields(schema) == [("x",)]   # was a RecursionError


def test_free_text_fields_leave_out_strings_the_schema_shapes():
    schema = {"type": "object", "properties": {
        "title": {"type": "string"}, "when": {"type": "string", "format": "date"},
        "sku": {"type": "string", "pattern": "^[A-Z]{3}$"}, "n": {"type": "integer"}}}
    assert free_text_fields(schema) == [("title",)]


def test_examples_count_with_their_weight():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    steer = build_steer(schema, 0.5, examples=[{"name": "Ann"}])
    assert steer.fields[("name",)].count(b'Ann"') == EXAMPLE_WEIGHT


def test_nulls_cost_only_their_share_above_the_examples_share():
    schema = {"type": "object", "properties": {
        "reviewer": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    examples = [{"reviewer": "Marta"}, {"reviewer": None}, {"reviewer": "Kwame"}]
    steer = build_steer(schema, 0.5, examples=examples)
    counts = steer.fields[("reviewer",)]
    assert (counts.shown, counts.shown_nulls) == (3, 1)
    assert counts.null_pressure() == 0            # the run starts at the examples' rate
    for _ in range(12):
        steer.add_null(("reviewer",))
    share = (EXAMPLE_WEIGHT + 12) / (3 * EXAMPLE_WEIGHT + 12)
    assert counts.null_pressure() == pytest.approx(share - 1 / 3)
    assert counts.most_pressure(b"") >= counts.null_pressure()
    for i in range(30):
        counts.add(f"reviewer {i}".encode())
    assert counts.null_pressure() == 0            # back below the examples' share


def test_nulls_are_free_when_no_example_has_the_field():
    counts = FieldCounts()
    counts.add(b"Ann")
    counts.add_null()
    assert counts.null_pressure() == 0


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


SURVEY = {"type": "object", "title": "Survey", "properties": {
    "favourite_colour": {"type": "string"},
    "age": {"type": "integer", "minimum": 18, "maximum": 90}},
    "required": ["favourite_colour", "age"]}


@pytest.mark.embedded
def test_the_steer_spreads_a_field_with_a_strong_favourite(embedded):
    made = {}
    for diversity in (0.0, DEFAULT_DIVERSITY):
        gen = Generator(SURVEY, model=embedded, subject="survey answers", seed=3,
                        diversity=diversity)
        # too short a run to draft examples: drafts would hide the favourite from both
        made[diversity] = Counter(r["favourite_colour"] for r in gen.generate(MIN_RUN - 1))
        assert gen.stats.drafted == 0
    plain, steered = made[0.0], made[DEFAULT_DIVERSITY]
    favourite, count = plain.most_common(1)[0]   # "blue", 3 of 14 when measured
    assert count >= 3
    assert steered[favourite] < count and steered.most_common(1)[0][1] < count
    assert len(steered) > len(plain)


@pytest.mark.embedded
def test_auto_rules_hold_by_construction_on_the_embedded_model(embedded):
    gen = Generator(MedicalBilling, model=embedded, examples=MEDICAL_EXAMPLES, seed=7,
                    rules=["auto"])
    assert "insurance_claim_amount <= total_charge" in [r.text for r in gen.plan.rules]
    records = gen.generate(8)
    assert all(r.insurance_claim_amount <= r.total_charge for r in records)
    assert not any(kind.startswith("rule") for kind in gen.stats.rejected)  # never retried
    assert gen.stats.drafted == 0

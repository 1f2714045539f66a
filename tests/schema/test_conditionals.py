"""`if`/`then`/`else` decoded as a union: the rewrite keeps exactly the records the user's
schema allows where it can state "not if", and never forbids a valid record elsewhere."""

from __future__ import annotations

import itertools

import jsonschema
import pytest

from simulacra.schema.conditionals import conditionals_as_unions
from simulacra.schema.grammar import compile_grammar
from simulacra.schema.load import load_schema_unchecked


def rewritten(schema):
    copy = {**schema}
    conditionals_as_unions(copy)
    return copy


def same_verdicts(schema, instances):
    """The rewrite accepts what the original accepts: exactly, or at least (`looser`)."""
    before = jsonschema.Draft202012Validator(schema)
    after = jsonschema.Draft202012Validator(rewritten(schema))
    return [(i, before.is_valid(i), after.is_valid(i)) for i in instances]


KIND = {"kind": {"enum": ["a", "b", "c"]}, "size": {"type": "integer"}}
INSTANCES = [dict(zip(("kind", "size"), values, strict=True)) for values in
             itertools.product(["a", "b", "c"], [0, 5, 50])] + [{"size": 5}, {"size": 50}, {}]


@pytest.mark.parametrize("condition", [
    {"properties": {"kind": {"const": "a"}}},
    {"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
    {"properties": {"kind": {"enum": ["a", "b"]}}},
    {"required": ["kind"]},
])
def test_a_discriminator_condition_is_rewritten_exactly(condition):
    schema = {"type": "object", "properties": KIND, "if": condition,
              "then": {"properties": {"size": {"maximum": 9}}},
              "else": {"properties": {"size": {"minimum": 10}}}}
    out = rewritten(schema)
    assert "if" not in out and len(out["anyOf"]) == 2
    for instance, before, after in same_verdicts(schema, INSTANCES):
        assert before == after, instance


def test_a_condition_the_grammar_cannot_negate_keeps_every_valid_record():
    schema = {"type": "object", "properties": KIND,
              "if": {"properties": {"size": {"minimum": 10}}},
              "then": {"properties": {"kind": {"const": "a"}}}}
    for instance, before, after in same_verdicts(schema, INSTANCES):
        assert after or not before, instance  # looser, never stricter: validation decides


def test_an_if_beside_an_anyof_is_added_to_allof():
    schema = {"type": "object", "properties": KIND, "anyOf": [{"required": ["kind"]}],
              "if": {"required": ["size"]}, "then": {"required": ["kind"]}}
    out = rewritten(schema)
    assert out["anyOf"] == [{"required": ["kind"]}] and len(out["allOf"]) == 1
    for instance, before, after in same_verdicts(schema, INSTANCES):
        assert before == after, instance


def test_the_decoding_copy_compiles_and_stays_closed():
    schema = load_schema_unchecked({
        "type": "object", "properties": KIND, "required": ["kind", "size"],
        "if": {"properties": {"kind": {"const": "a"}}},
        "then": {"properties": {"size": {"maximum": 9}}}})
    decoding = schema.decoding_schema()
    assert decoding["additionalProperties"] is False  # the branches name only its properties
    assert compile_grammar(decoding).unenforced == ()


def test_branches_that_add_properties_close_the_object_to_their_names_too():
    schema = load_schema_unchecked({
        "type": "object", "properties": KIND,
        "if": {"properties": {"kind": {"const": "a"}}},
        "then": {"properties": {"extra": {"type": "string"}}, "required": ["extra"]}})
    decoding = schema.decoding_schema()
    assert decoding["additionalProperties"] is False
    assert set(decoding["properties"]) == {"kind", "size", "extra"}   # the branch's name is kept


def test_a_branch_that_allows_any_name_leaves_the_object_open():
    schema = load_schema_unchecked({
        "type": "object", "properties": KIND,
        "anyOf": [{"required": ["kind"]}, {"patternProperties": {"^x-": {"type": "string"}}}]})
    assert "additionalProperties" not in schema.decoding_schema()

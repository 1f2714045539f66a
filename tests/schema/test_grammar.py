"""The reply's JSON layout: spaced or compact, the prompt's examples written the same way."""

from __future__ import annotations

import re

import pytest

from simulacra.backends.base import Request
from simulacra.schema import load_schema
from simulacra.schema.grammar import (
    COMPACT,
    SPACED,
    compile_grammar,
    dumps,
    separators_for,
)

CLOSED = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
          "required": ["a", "b"], "additionalProperties": False}


def test_dumps_writes_the_layout_of_its_separators():
    value = {"id": 7, "tags": ["a", "b"], "name": "Zoë"}
    assert dumps(value) == '{"id": 7, "tags": ["a", "b"], "name": "Zoë"}'
    assert dumps(value, COMPACT) == '{"id":7,"tags":["a","b"],"name":"Zoë"}'


def test_compact_only_where_the_model_has_no_choice_of_shape():
    assert separators_for(CLOSED) == COMPACT
    nested = {**CLOSED, "properties": {**CLOSED["properties"], "c": {"$ref": "#/$defs/C"}},
              "required": ["a", "b", "c"], "$defs": {"C": CLOSED}}
    assert separators_for(nested) == COMPACT
    open_ended = [
        {**CLOSED, "required": ["a"]},                                  # an optional property
        {**CLOSED, "additionalProperties": True},                       # extra keys
        {**CLOSED, "properties": {"a": {"type": "array", "items": {"type": "string"}}},
         "required": ["a"]},                                            # a list
        {**nested, "$defs": {"C": {**CLOSED, "required": []}}},         # deep inside
        {**CLOSED, "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                                  "b": {"type": "string"}}},                  # a nullable field
        {"type": ["string", "null"]},
        {"enum": ["low", "high", None]},
        {**CLOSED, "properties": {"a": {"description": "anything"}, "b": {"type": "string"}}},
        True,                                                           # any value at all
    ]
    assert [separators_for(s) for s in open_ended] == [SPACED] * len(open_ended)


def test_each_layout_compiles_to_its_own_grammar():
    assert compile_grammar(CLOSED, SPACED).grammar != compile_grammar(CLOSED, COMPACT).grammar


def outside_strings(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


@pytest.mark.embedded
def test_the_embedded_model_writes_each_layout_it_is_asked_for(embedded):
    schema = load_schema("examples.medical_billing:MedicalBilling")
    for layout in (SPACED, COMPACT):
        [c] = embedded.complete([Request(prompt="Medical billing records as JSON:\n", seed=3,
                                         json_schema=schema.decoding_schema(), max_tokens=200,
                                         separators=layout)])
        schema.validate(c.text)
        structure = outside_strings(c.text)
        assert structure.count(layout[0]) == 5 and structure.count(layout[1]) == 6
        assert structure.count(" ") == layout[0].count(" ") * 5 + layout[1].count(" ") * 6

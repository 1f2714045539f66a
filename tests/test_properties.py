"""Property tests: random schemas either are refused up front, or every emitted record validates."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulacra import Generator, load_schema
from simulacra.backends.fake import SchemaFillBackend
from simulacra.errors import UnsupportedSchemaError, UsageError

names = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)


def leaf() -> st.SearchStrategy[dict]:
    string = st.builds(lambda lo, extra: {"type": "string", "minLength": lo,
                                          "maxLength": lo + extra},
                       st.integers(0, 5), st.integers(0, 20))
    integer = st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
                        st.integers(-1000, 1000), st.integers(0, 1000))
    number = st.builds(lambda lo, span: {"type": "number", "minimum": lo, "maximum": lo + span},
                       st.integers(-100, 100), st.integers(1, 100))
    enum = st.lists(names, min_size=1, max_size=4, unique=True).map(lambda v: {"enum": v})
    boolean = st.just({"type": "boolean"})
    date = st.just({"type": "string", "format": "date"})
    return st.one_of(string, integer, number, enum, boolean, date)


def node(depth: int) -> st.SearchStrategy[dict]:
    base = leaf()
    if depth == 0:
        return base
    child = node(depth - 1)
    array = st.builds(lambda item, lo, extra: {"type": "array", "items": item, "minItems": lo,
                                               "maxItems": lo + extra},
                      child, st.integers(0, 2), st.integers(0, 3))
    optional = child.map(lambda c: {"anyOf": [c, {"type": "null"}]})
    obj = st.dictionaries(names, child, min_size=1, max_size=4).map(
        lambda props: {"type": "object", "properties": props, "required": sorted(props)[:1]})
    return st.one_of(base, array, optional, obj)


def extras(props: dict) -> st.SearchStrategy[dict]:
    """Keywords beside `properties`: the ones the grammar enforces and the ones checked after."""
    first = sorted(props)[0]
    return st.sampled_from([
        {}, {"additionalProperties": False}, {"not": {"type": "null"}},
        {"patternProperties": {"^x_[a-z]{1,4}$": {"type": "integer"}}, "additionalProperties": False},
        {"propertyNames": {"maxLength": 8}},
        {"minProperties": 1, "maxProperties": len(props) + 1},
        {"dependentRequired": {first: [first]}},
        {"if": {"properties": {first: {"const": None}}}, "then": {"required": [first]}},
        {"allOf": [{"required": [first]}]},
        {"oneOf": [{"required": [first]}, {"required": ["zz_absent"]}]},
        {"properties": {"k": {"const": {"a": [1, None]}}}},
        {"properties": {"u": {"type": "array", "items": {"enum": [1, 2, 3]}, "uniqueItems": True,
                              "maxItems": 3, "contains": {"const": 2}}}},
    ])


schemas = st.dictionaries(names, node(2), min_size=1, max_size=5).flatmap(
    lambda props: extras(props).map(lambda extra: {
        **extra, "type": "object", "required": sorted(props),
        "properties": {**props, **extra.get("properties", {})}}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas)
def test_random_schemas_are_refused_or_every_record_validates(js):
    try:
        schema = load_schema(js)
    except UnsupportedSchemaError as exc:   # only a schema without a valid instance
        assert exc.path and "\n" not in str(exc)
        return
    gen = Generator(schema, model=SchemaFillBackend(), seed=1, max_attempts=2)
    validator = jsonschema.Draft202012Validator(
        js, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    try:
        outcomes = list(gen.outcomes(5))
    except UsageError as exc:   # fewer than 5 distinct records exist: said before any run
        assert "distinct record" in str(exc)
        return
    for outcome in outcomes:
        validator.validate(outcome.data)
    assert len(outcomes) + len(gen.stats.failed) == 5


@pytest.mark.embedded
def test_a_sample_of_random_schemas_on_the_embedded_model(embedded):
    """A handful of generated schemas through the real model: valid records or a clear refusal."""
    examples = []

    @settings(max_examples=4, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(schemas)
    def collect(js):
        examples.append(js)

    collect()
    for js in examples:
        try:
            schema = load_schema(js)
        except UnsupportedSchemaError:
            continue
        gen = Generator(schema, model=embedded, seed=3, max_attempts=3)
        try:
            outcomes = list(gen.outcomes(2))
        except UsageError as exc:
            assert "distinct record" in str(exc)
            continue
        validator = jsonschema.Draft202012Validator(
            js, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for outcome in outcomes:
            validator.validate(outcome.data)
        assert outcomes or gen.stats.failed, json.dumps(js)

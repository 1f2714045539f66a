"""Token budgets from the schema's size: a record the schema allows is never cut."""

from __future__ import annotations

import json

import pytest

from simulacra.engine.run import token_budgets
from simulacra.estimate import count_tokens
from simulacra.plan import Plan
from simulacra.schema import load_schema
from simulacra.schema.size import longest_tokens, shortest_tokens


def nested_optional(depth: int = 3, width: int = 4) -> dict:
    """An event-like schema: several optional sub-objects, nested."""
    if depth == 0:
        return {"type": "string", "maxLength": 20}
    return {"type": "object", "properties": {
        f"part{i}": nested_optional(depth - 1, width) for i in range(width)}}


def test_longest_covers_a_full_instance_and_shortest_only_the_required_part():
    schema = load_schema(nested_optional())
    decoding = schema.decoding_schema()
    full = {f"part{i}": {f"part{j}": {f"part{k}": "x" * 20 for k in range(4)} for j in range(4)}
            for i in range(4)}
    assert longest_tokens(decoding) >= count_tokens(json.dumps(full))
    assert shortest_tokens(decoding) <= 3   # nothing is required: `{}`


def test_budget_of_a_nested_optional_schema_is_not_the_typical_guess():
    plan = Plan.build(load_schema(nested_optional()))
    limit, close_after = token_budgets(plan, grammar=True)
    assert limit >= 16 * 4 * 8   # every leaf string written in full still fits
    assert 64 <= close_after < limit
    endpoint_limit, _ = token_budgets(plan, grammar=False)
    assert endpoint_limit == close_after   # an endpoint cannot be steered: cut at the usual size


def test_own_properties_beside_anyof_count():
    js = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 200}},
          "anyOf": [{"required": ["a"]}, {"required": []}]}
    assert longest_tokens(load_schema(js).decoding_schema()) > 200


def test_pattern_properties_and_maps_count():
    js = {"type": "object", "patternProperties": {"^s_": {"type": "string", "maxLength": 50}},
          "additionalProperties": False}
    assert longest_tokens(load_schema(js).decoding_schema()) >= 5 * 50


def test_recursion_is_bounded():
    js = {"$defs": {"n": {"type": "object", "properties": {"kids": {"type": "array", "items": {
        "$ref": "#/$defs/n"}}}}}, "$ref": "#/$defs/n"}
    assert 0 < longest_tokens(load_schema(js).decoding_schema()) < 10**12


@pytest.mark.embedded
def test_steer_to_close_ends_records_near_their_usual_size(embedded):
    """A request whose usual size is small is closed soon after it, though the schema would
    let it run for hundreds of tokens; the record is complete and valid."""
    from simulacra.backends.base import Request

    schema = load_schema(nested_optional())
    decoding = schema.decoding_schema()
    requests = [Request(prompt="Synthetic data: nested records.\n", json_schema=decoding,
                        max_tokens=1000, close_after=close, seed=seed, temperature=0.9)
                for seed in (1, 2) for close in (20, None)]
    completions = embedded.complete(requests)
    for completion in completions:
        assert completion.finish_reason == "stop", completion
        schema.validate(json.loads(completion.text))
    steered = [c.tokens_out for r, c in zip(requests, completions, strict=True) if r.close_after]
    assert max(steered) < 20 + 60, steered


def test_distinct_instances_counts_small_spaces_and_opens_objects_when_too_few():
    from simulacra.engine.run import decoding_schema_for
    from simulacra.errors import UsageError
    from simulacra.schema.size import INFINITE, distinct_instances

    tiny = load_schema({"type": "object", "properties": {"d": {"enum": ["letter"]}}})
    assert distinct_instances(tiny.decoding_schema()) == 2          # {} and {"d": "letter"}
    big = load_schema({"type": "object", "properties": {"d": {"enum": list(range(30))}}})
    assert decoding_schema_for(big, 10)["additionalProperties"] is False
    opened = decoding_schema_for(tiny, 2)    # 2 to pick 2 from: open, as the schema leaves it
    assert "additionalProperties" not in opened
    assert distinct_instances(opened) == INFINITE
    closed = load_schema({"type": "object", "properties": {}, "additionalProperties": False})
    with pytest.raises(UsageError, match="allows only 1 distinct record; ask for at most 1"):
        decoding_schema_for(closed, 2)
    flags = load_schema({"type": "array", "items": {"type": "boolean"}, "maxItems": 2})
    assert distinct_instances(flags.decoding_schema()) == 1 + 2 + 4

"""The run's estimate counts records in the layout the backend will write them."""

from __future__ import annotations

from pydantic import BaseModel

from simulacra.backends.base import Capabilities
from simulacra.backends.fake import ScriptedBackend
from simulacra.estimate import EXPECTED_ATTEMPTS, count_tokens, estimate
from simulacra.plan import Plan
from simulacra.schema import load_schema


class Bill(BaseModel):
    name: str
    total: float


class Tagged(BaseModel):
    name: str
    tags: list[str]


def test_a_grammar_backend_is_estimated_on_compact_records_where_the_shape_is_fixed():
    example = {"name": "Ann Lee", "total": 12.5}
    plan = Plan.build(load_schema(Bill), [example])
    grammar = ScriptedBackend([], capabilities=Capabilities(grammar=True, batch=4))
    endpoint = ScriptedBackend([], capabilities=Capabilities(grammar=False, batch=4))
    compact = estimate(plan, grammar, 100).tokens_out
    spaced = estimate(plan, endpoint, 100).tokens_out
    assert compact == round(100 * count_tokens('{"name":"Ann Lee","total":12.5}') * EXPECTED_ATTEMPTS)
    assert spaced == round(100 * count_tokens('{"name": "Ann Lee", "total": 12.5}') * EXPECTED_ATTEMPTS)
    assert compact < spaced


def test_an_open_shape_is_estimated_spaced_on_every_backend():
    plan = Plan.build(load_schema(Tagged), [{"name": "Ann", "tags": ["a", "b"]}])
    grammar = ScriptedBackend([], capabilities=Capabilities(grammar=True, batch=4))
    endpoint = ScriptedBackend([], capabilities=Capabilities(grammar=False, batch=4))
    assert estimate(plan, grammar, 10).tokens_out == estimate(plan, endpoint, 10).tokens_out

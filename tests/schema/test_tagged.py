"""A `oneOf` told apart by an optional tag (the decoding copy requires the tag) or by what
its branches require (the grammar's copy forbids the other branches' keys)."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from simulacra import Generator
from simulacra.schema import load_schema
from simulacra.schema.grammar import compile_grammar
from simulacra.schema.tagged import forbid_others_required, require_tags

LABEL = {"type": "string", "maxLength": 12}


def branch(kind, **more):
    return {"type": "object", "properties": {"kind": kind, "label": LABEL, **more},
            "required": ["label"], "additionalProperties": False}


def widgets(button_kind=None, slider_kind=None):
    """Widgets of three kinds; each kind's tag is optional in the user's schema."""
    return {"$defs": {
        "widget": {"oneOf": [{"$ref": "#/$defs/button"}, {"$ref": "#/$defs/slider"},
                             {"$ref": "#/$defs/toggle"}]},
        "button": branch(button_kind or {"enum": ["button", "link"]}),
        "slider": branch(slider_kind or {"const": "slider"},
                         max={"type": "integer", "minimum": 1, "maximum": 100}),
        "toggle": branch({"enum": ["toggle"]})},
        "type": "object", "required": ["widgets"],
        "properties": {"widgets": {"type": "array", "minItems": 2, "maxItems": 3,
                                   "items": {"$ref": "#/$defs/widget"}}}}


def test_the_decoding_copy_requires_the_tag_in_every_branch():
    user = widgets()
    decoding = load_schema(user).decoding_schema()
    for name in ("button", "slider", "toggle"):
        assert "kind" in decoding["$defs"][name]["required"]
        assert decoding["$defs"][name]["required"][0] == "label"   # the user's stay first
    assert user == widgets()   # the user's schema is not changed


def test_a_value_without_its_tag_fails_only_the_decoding_copy():
    user = widgets()
    untagged = {"widgets": [{"label": "OK"}, {"label": "Go"}]}
    tagged = {"widgets": [{"kind": "link", "label": "OK"}, {"kind": "slider", "label": "Go"}]}
    decoding = load_schema(user).decoding_schema()
    assert not jsonschema.Draft202012Validator(user).is_valid(untagged)   # matches all three
    assert not jsonschema.Draft202012Validator(decoding).is_valid(untagged)
    assert jsonschema.Draft202012Validator(decoding).is_valid(tagged)
    assert jsonschema.Draft202012Validator(user).is_valid(tagged)


@pytest.mark.parametrize("case", ["shared value", "branch without the property", "anyOf",
                                  "already required", "not a list of values"])
def test_unions_that_a_tag_cannot_tell_apart_are_left_alone(case):
    schema = widgets()
    if case == "shared value":
        schema = widgets(slider_kind={"enum": ["slider", "link"]})
    elif case == "branch without the property":
        del schema["$defs"]["toggle"]["properties"]["kind"]
    elif case == "anyOf":
        schema["$defs"]["widget"] = {"anyOf": schema["$defs"]["widget"]["oneOf"]}
    elif case == "already required":
        for name in ("button", "slider", "toggle"):
            schema["$defs"][name]["required"] = ["kind", "label"]
    elif case == "not a list of values":
        schema = widgets(button_kind={"type": "string"})
    before = copy.deepcopy(schema)
    require_tags(schema)
    assert schema == before


def test_inline_branches_and_a_remote_ref_are_handled():
    inline = {"oneOf": [branch({"const": 1}), branch({"const": 2})]}
    require_tags(inline)
    assert [b["required"] for b in inline["oneOf"]] == [["label", "kind"], ["label", "kind"]]
    remote = {"oneOf": [{"$ref": "other.json#/a"}, branch({"const": 2})]}
    before = copy.deepcopy(remote)
    require_tags(remote)
    assert remote == before


def payment():
    """Exactly one way to pay: the branches differ only in the properties they require."""
    text = {"type": "string", "maxLength": 24}
    return {"type": "object", "additionalProperties": False, "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 1, "maximum": 500},
                           "card_number": text, "iban": text, "bank": text, "note": text},
            "oneOf": [{"required": ["card_number"]}, {"required": ["iban", "bank"]}]}


class _Bytes:
    """A tokenizer whose tokens are the 256 bytes: a grammar's verdict on a text, in full."""
    eos_token_id, bos_token_id = 256, None
    tokens = [bytes([i]) for i in range(256)] + [b"</s>"]

    def __call__(self, data):
        return list(data)


def grammar_accepts(schema, value) -> bool:
    import llguidance

    grammar = compile_grammar(load_schema(schema).decoding_schema()).grammar
    matcher = llguidance.LLMatcher(
        llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes())), grammar)
    text = json.dumps(value, separators=(", ", ": ")).encode()
    return bool(matcher.consume_tokens(list(text))) and matcher.is_accepting()


@pytest.mark.parametrize("value, valid", [
    ({"amount": 5, "card_number": "4111"}, True),
    ({"amount": 5, "iban": "DE89", "bank": "GLS"}, True),
    ({"amount": 5, "card_number": "4111", "iban": "DE89", "bank": "GLS"}, False),  # both
    ({"amount": 5, "iban": "DE89"}, False),                                          # neither
])
def test_the_grammar_takes_exactly_one_of_the_required_sets(value, valid):
    schema = payment()
    assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid
    assert grammar_accepts(schema, value) is valid
    # narrower than the schema where it must be: a key only the other branch requires
    # is left out even where the schema would allow it beside this branch's
    assert not grammar_accepts(schema, {"amount": 5, "card_number": "4111", "iban": "DE89"})
    assert jsonschema.Draft202012Validator(schema).is_valid(
        {"amount": 5, "card_number": "4111", "iban": "DE89"})


def test_the_decoding_schema_itself_is_not_changed():
    """`false` as a property's schema is for the grammar only: a server given the decoding
    schema (llama-cpp-python's converter, for one) may not take it."""
    decoding = load_schema(payment()).decoding_schema()
    assert all(set(b) <= {"required", "type"} for b in decoding["oneOf"]), decoding["oneOf"]


@pytest.mark.parametrize("case", ["one set holds another", "a $ref branch", "anyOf",
                                  "a branch without required"])
def test_branches_that_required_names_cannot_tell_apart_are_left_alone(case):
    schema = payment()
    if case == "one set holds another":
        schema["oneOf"] = [{"required": ["iban"]}, {"required": ["iban", "bank"]}]
    elif case == "a $ref branch":
        schema["$defs"] = {"card": {"required": ["card_number"]}}
        schema["oneOf"][0] = {"$ref": "#/$defs/card"}
    elif case == "anyOf":
        schema["anyOf"] = schema.pop("oneOf")
    elif case == "a branch without required":
        schema["oneOf"].append({"properties": {"note": {"maxLength": 3}}})
    before = copy.deepcopy(schema)
    forbid_others_required(schema)
    assert schema == before


def test_each_branch_forbids_only_what_the_others_alone_require():
    schema = {"oneOf": [{"required": ["a", "shared"]}, {"required": ["b", "c", "shared"]},
                        {"required": ["d"], "properties": {"a": {"type": "string"}}}]}
    forbid_others_required(schema)
    assert [b["properties"] for b in schema["oneOf"]] == [
        {"b": False, "c": False, "d": False},
        {"a": False, "d": False},
        {"a": False, "b": False, "c": False, "shared": False}]


def valid_first_time(embedded, schema, n: int, seed: int) -> list:
    """`n` records on the embedded model, every one valid and none rejected as invalid."""
    gen = Generator(schema, model=embedded, seed=seed, max_attempts=4)
    records = gen.generate(n)
    check = jsonschema.Draft202012Validator(schema)
    assert len(records) == n and all(check.is_valid(r) for r in records), records
    assert not gen.stats.rejected.get("invalid"), gen.stats.rejected
    return records


@pytest.mark.embedded
def test_the_embedded_model_pays_one_way_only(embedded):
    valid_first_time(embedded, payment(), 4, seed=3)


@pytest.mark.embedded
def test_the_embedded_model_writes_tagged_widgets_of_several_kinds_first_time(embedded):
    records = valid_first_time(embedded, widgets(), 6, seed=5)
    # the tag is steered like a field (engine/diversity.py), so every branch turns up
    # (left to itself the model wrote 17 buttons of 17 widgets, seed 7)
    branch = {"button": "button", "link": "button", "slider": "slider", "toggle": "toggle"}
    kinds = [widget["kind"] for record in records for widget in record["widgets"]]
    assert {branch[kind] for kind in kinds} == {"button", "slider", "toggle"}, kinds

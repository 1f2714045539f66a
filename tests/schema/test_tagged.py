"""A `oneOf` told apart by an optional tag: the decoding copy requires the tag."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from simulacra import Generator
from simulacra.schema import load_schema
from simulacra.schema.tagged import require_tags

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


@pytest.mark.embedded
def test_the_embedded_model_writes_tagged_widgets_of_several_kinds_first_time(embedded):
    schema = widgets()
    gen = Generator(schema, model=embedded, seed=5, max_attempts=4)
    records = gen.generate(6)
    check = jsonschema.Draft202012Validator(schema)
    assert len(records) == 6
    for record in records:
        assert check.is_valid(record), record
    assert not gen.stats.rejected.get("invalid"), gen.stats.rejected
    # the tag is steered like a field (engine/diversity.py), so every branch turns up
    # (left to itself the model wrote 17 buttons of 17 widgets, seed 7)
    branch = {"button": "button", "link": "button", "slider": "slider", "toggle": "toggle"}
    kinds = [widget["kind"] for record in records for widget in record["widgets"]]
    assert {branch[kind] for kind in kinds} == {"button", "slider", "toggle"}, kinds

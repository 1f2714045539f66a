"""Every keyword family, dialect and root shape: records made on the embedded model and
validated by `jsonschema` (format checks on), independently of simulacra's own validation."""

from __future__ import annotations

import jsonschema
import pytest

from simulacra import Generator
from simulacra.errors import UnsupportedSchemaError
from simulacra.schema import load_schema
from simulacra.schema.load import load_schema_unchecked


def referee(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def obj(properties, required=None, **more):
    return {"type": "object", "properties": properties,
            "required": required if required is not None else list(properties), **more}


S = {"type": "string", "maxLength": 12}
FAMILIES = {
    "patternProperties": obj({"name": S}, patternProperties={"^tag_[a-z]+$": {"type": "integer"}},
                             additionalProperties=False, minProperties=2),
    "propertyNames": {"type": "object", "propertyNames": {"pattern": "^[a-z]{1,8}$"},
                      "additionalProperties": {"type": "integer"}, "minProperties": 1},
    "additionalProperties schema": obj({"id": {"type": "integer"}},
                                       additionalProperties={"type": "boolean"}),
    "dependentRequired": obj({"card": S, "billing": S, "note": S}, ["note"],
                             dependentRequired={"card": ["billing"]}),
    "dependentSchemas": obj({"kind": {"enum": ["a", "b"]}, "size": {"type": "integer"}}, ["kind"],
                            dependentSchemas={"size": {"properties": {"size": {"minimum": 3}}}}),
    "if/then/else": obj({"country": {"enum": ["US", "FR"]}, "zip": S}, ["country", "zip"],
                        **{"if": {"properties": {"country": {"const": "US"}}},
                           "then": {"properties": {"zip": {"pattern": "^[0-9]{5}$"}}},
                           "else": {"properties": {"zip": {"pattern": "^[0-9]{4,5}$"}}}}),
    "not": obj({"color": {"type": "string", "enum": ["red", "green", "blue"],
                          "not": {"const": "red"}}}),
    "oneOf": obj({"pet": {"oneOf": [obj({"meow": {"type": "boolean"}}, additionalProperties=False),
                                    obj({"bark": {"type": "integer", "minimum": 0, "maximum": 9}},
                                        additionalProperties=False)]}}),
    "allOf": {"allOf": [obj({"a": S}), obj({"b": {"type": "integer", "minimum": 1,
                                                    "maximum": 9}})]},
    "contains": obj({"xs": {"type": "array", "items": {"type": "integer", "minimum": 0,
                                                          "maximum": 20},
                            "contains": {"minimum": 10}, "minContains": 1, "maxContains": 2,
                            "maxItems": 4}}),
    "uniqueItems": obj({"tags": {"type": "array", "items": {"enum": ["x", "y", "z"]},
                                 "uniqueItems": True, "minItems": 2, "maxItems": 3}}),
    "min/maxProperties": {"type": "object", "additionalProperties": {"type": "integer"},
                          "minProperties": 2, "maxProperties": 3},
    "$ref with siblings": {"$defs": {"n": {"type": "integer"}},
                           **obj({"age": {"$ref": "#/$defs/n", "minimum": 18, "maximum": 99}})},
    "recursive $ref": {"$defs": {"node": obj({"label": S, "children": {
        "type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, ["label"])},
        "$ref": "#/$defs/node"},
    "boolean schemas": obj({"anything": True, "never": False}, ["anything"]),
    "const/enum of any value": obj({"point": {"const": {"x": 1, "y": [2, 3]}},
                                    "choice": {"enum": [[1, 2], {"k": None}, "s", 4.5]}}),
    "formats": obj({f: {"type": "string", "format": f} for f in (
        "date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uri",
        "uri-reference", "uuid", "regex")}),
    "array root": {"type": "array", "items": obj({"n": {"type": "integer", "minimum": 0,
                                                         "maximum": 9}}),
                   "minItems": 1, "maxItems": 3},
    "string root": {"type": "string", "format": "email"},
    "number root": {"type": "number", "minimum": 1, "maximum": 2},
}


@pytest.mark.embedded
@pytest.mark.parametrize("name", FAMILIES)
def test_keyword_family_gives_valid_records(embedded, name):
    schema = FAMILIES[name]
    gen = Generator(schema, model=embedded, seed=3, max_attempts=8)
    records = gen.generate(2)
    assert len(records) == 2, gen.stats.failed
    check = referee(schema)
    for record in records:
        errors = [e.message for e in check.iter_errors(record)]
        assert not errors, (record, errors)


DIALECTS = {
    "draft-04": {"$schema": "http://json-schema.org/draft-04/schema#", "id": "urn:x",
                 "type": "object", "required": ["n", "pair"], "properties": {
                     "n": {"type": "number", "minimum": 0, "maximum": 5, "exclusiveMaximum": True},
                     "pair": {"type": "array", "items": [{"type": "string", "maxLength": 8},
                                                         {"type": "integer"}],
                              "additionalItems": False, "minItems": 2}},
                 "definitions": {"unused": {"type": "string"}},
                 "dependencies": {"n": ["pair"]}},
    "draft-06": {"$schema": "http://json-schema.org/draft-06/schema#", "type": "object",
                 "properties": {"x": {"type": "integer", "exclusiveMinimum": 0,
                                      "exclusiveMaximum": 10}}, "required": ["x"]},
    "draft-07": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                 "properties": {"k": {"enum": ["a", "b"]}, "v": S}, "required": ["k", "v"],
                 "if": {"properties": {"k": {"const": "a"}}},
                 "then": {"properties": {"v": {"minLength": 3}}}},
    "2019-09": {"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
                "properties": {"a": S, "b": S}, "required": ["a"],
                "dependentRequired": {"b": ["a"]}},
    "2020-12": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array",
                "prefixItems": [{"type": "boolean"}], "items": {"type": "integer"},
                "minItems": 1, "maxItems": 3},
}


@pytest.mark.embedded
@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_gives_records_its_own_validator_accepts(embedded, dialect):
    schema = DIALECTS[dialect]
    loaded = load_schema(schema)
    assert loaded.support.dialect == dialect
    records = Generator(loaded, model=embedded, seed=5).generate(2)
    check = referee(schema)
    assert all(check.is_valid(r) for r in records), records


def test_draft04_forms_become_2020_12_for_the_decoder():
    decoding = load_schema(DIALECTS["draft-04"]).decoding_schema()
    n = decoding["properties"]["n"]
    assert n["exclusiveMaximum"] == 5 and "maximum" not in n
    pair = decoding["properties"]["pair"]
    assert pair["prefixItems"][1] == {"type": "integer", "minimum": -10**9, "maximum": 10**9}
    assert pair["items"] is False
    assert decoding["dependentRequired"] == {"n": ["pair"]}
    assert "id" not in decoding


def test_unknown_keywords_and_misspellings_are_ignored_and_listed():
    schema = {"type": "object", "self": {"vendor": "x"}, "properties": {
        "a": {"type": "string", "decription": "typo", "markdownDescription": "*a*"}},
        "additonalProperties": False, "required": ["a"]}
    report = load_schema(schema).support
    assert not report.refused
    assert {(e.path, e.keyword) for e in report.ignored} == {
        ("self", "self"), ("additonalProperties", "additonalProperties"),
        ("properties.a.decription", "decription"),
        ("properties.a.markdownDescription", "markdownDescription")}


def test_ref_into_an_unknown_keyword_still_resolves():
    schema = {"type": "object", "properties": {"p": {"$ref": "#/components/schemas/P"}},
              "required": ["p"], "components": {"schemas": {"P": {"type": "integer",
                                                                   "minimum": 1, "maximum": 3}}}}
    decoding = load_schema(schema).decoding_schema()
    ref = decoding["properties"]["p"]["$ref"]
    assert ref.startswith("#/$defs/")
    assert decoding["$defs"][ref.rsplit("/", 1)[1]]["maximum"] == 3


REFUSALS = {
    "bounds": ({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "minLength": 5, "maxLength": 2}}}, "properties.a",
        "lower minLength or raise maxLength"),
    "false required": ({"type": "object", "required": ["a"], "properties": {"a": False}},
                       "properties.a", "allows no value"),
    "empty enum": ({"enum": []}, "(root)", "list at least one"),
    "remote ref": ({"type": "object", "properties": {
        "a": {"$ref": "https://example.org/s.json"}}}, "properties.a.$ref", "save a local copy"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_every_refusal_names_the_path_and_the_fix(case):
    schema, path, fix = REFUSALS[case]
    with pytest.raises(UnsupportedSchemaError) as info:
        load_schema(schema)
    assert info.value.path == path
    assert fix in str(info.value) and "\n" not in str(info.value)


def test_an_unsatisfiable_optional_branch_is_not_refused():
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 5,
                                                     "maximum": 1}}}
    assert not load_schema_unchecked(schema).support.refused


def test_check_and_decoder_share_one_compile():
    """What `check` calls checked is what the grammar compile could not enforce."""
    report = load_schema(FAMILIES["oneOf"]).support
    assert not report.refused
    assert {e.keyword for e in report.entries if e.how == "checked"} <= {"oneOf"}
    report = load_schema(FAMILIES["not"]).support
    assert [e.path for e in report.entries if e.how == "checked"] == ["properties.color.not"]

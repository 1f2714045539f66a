"""The plausibility gate: valid values no real data set holds are rejected, with a reason."""

import pytest

from simulacra.checks.plausible import PlausibilityGate

REVIEW = {"type": "object", "title": "Review", "properties": {
    "product": {"type": "string"}, "title": {"type": "string"},
    "reviewer": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
    "sku": {"type": "string", "pattern": "^[A-Z]$"}, "grade": {"enum": ["A", "B"]}}}
GOOD = {"product": "Trail running shoes", "title": "Comfortable from day one",
        "reviewer": "Maya K.", "rating": 5, "sku": "Q", "grade": "A"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"product": "a"}, "implausible short"),
    ({"reviewer": ""}, "implausible short"),
    ({"product": '":{"'}, "implausible punctuation"),
    ({"reviewer": '"}, {"'}, "implausible punctuation"),
    ({"reviewer": "Tim},{"}, "implausible punctuation"),
    ({"title": "!!!"}, "implausible punctuation"),
    ({"product": "N/A"}, "implausible placeholder"),
    ({"title": "Unknown"}, "implausible placeholder"),
    ({"reviewer": "Reviewer"}, "implausible placeholder"),
    ({"product": "product_name"}, "implausible placeholder"),
    ({"reviewer": "{firstname}"}, "implausible placeholder"),
    ({"reviewer": "{{ reviewer_name }}"}, "implausible placeholder"),
    ({"product": "(the product's name),"}, "implausible placeholder"),
    ({"reviewer": "[username](https://www.example.com/username)"}, "implausible placeholder"),
    ({"reviewer": "<reviewer>"}, "implausible placeholder"),
    ({"product": "{{value|}} {{user.username}}"}, "implausible placeholder"),
    ({"title": "Product Titles"}, "implausible placeholder"),
    ({"product": "38507203405"}, "implausible no letters"),
    ({"title": "Review (Review) records"}, "implausible echo"),
    ({"title": "Trail running shoes"}, "implausible repeat"),
    ({"title": "trail-running shoes!"}, "implausible repeat"),
    ({"reviewer": "Jane Doe Doe"}, "implausible repeat"),
    ({"reviewer": "Meryl Streep (1997), "}, "implausible edge"),
    ({"title": "Light, warm,"}, "implausible edge"),
])
def test_each_reason_is_named(change, reason):
    found = PlausibilityGate(REVIEW).reason({**GOOD, **change})
    assert found is not None and found.startswith(reason + ":")


def test_real_looking_records_and_pinned_fields_pass():
    gate = PlausibilityGate(REVIEW)
    assert gate.reason(GOOD) is None
    for text in ["Kettle (1.7 l)", "Kettle for the office and ", "  indented;", "(555) 010-9999 hotline",
                 "Sarah [admin]", "{x} and {{y}}", "(a) or (b)"]:
        assert gate.reason({**GOOD, "product": text}) is None, text
    assert gate.reason({**GOOD, "reviewer": None}) is None
    assert gate.reason({**GOOD, "sku": "X", "grade": "B"}) is None   # the schema pins them


def test_what_an_example_does_or_the_field_name_says_is_plausible():
    notes = {"type": "object", "properties": {"name": {"type": "string"},
                                              "note": {"type": "string"}}}
    assert PlausibilityGate(notes).reason({"name": "Ann Lee", "note": "B"})
    gate = PlausibilityGate(notes, [{"name": "Bo Li", "note": "A"}])
    assert gate.reason({"name": "Ann Lee", "note": "B"}) is None
    grades = {"type": "object", "properties": {"name": {"type": "string"},
                                               "grade": {"type": "string"}}}
    assert PlausibilityGate(grades).reason({"name": "Ann Lee", "grade": "B"}) is None


def test_what_the_schema_states_or_a_camel_case_name_says_is_plausible():
    config = {"type": "object", "properties": {
        "title": {"type": "string"},
        "endMarker": {"type": "string", "default": ""},
        "banner": {"type": "string", "examples": ["***"]},
        "statementTerminator": {"type": "string"},
        "listenPort": {"type": "string"}, "commentPrefix": {"type": "string"},
        "about": {"type": "string"}}}
    gate = PlausibilityGate(config)
    record = {"title": "Import sorter", "endMarker": "", "banner": "***",
              "statementTerminator": ";", "listenPort": "8", "commentPrefix": "//", "about": "Sorts imports"}
    assert gate.reason(record) is None
    assert gate.reason({**record, "about": ""}) == "implausible short: about is ''"
    assert gate.reason({**record, "listenPort": ""}) == "implausible short: listenPort is ''"
    assert gate.reason({**record, "commentPrefix": ""}) is None
    assert gate.reason({**record, "statementTerminator": "<br>"}) is None
    assert gate.reason({**record, "about": "<br>"}) == "implausible placeholder: about is '<br>'"


def test_a_record_with_no_value_is_empty_where_the_schema_names_fields():
    settings = {"type": "object", "properties": {
        "name": {"type": ["string", "null"]}, "retries": {"type": "integer"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "hosts": {"type": "array", "items": {"type": "string"}}}}
    gate = PlausibilityGate(settings)
    for record in [{}, {"name": None}, {"labels": {}, "hosts": []}, {"labels": {"a": None}}]:
        assert gate.reason(record) == "implausible empty: the record has no value in any field"
    for record in [{"retries": 0}, {"hosts": ["db1"]}, {"labels": {"tier": "web"}}]:
        assert gate.reason(record) is None, record
    # a schema that names no field, or an example that is itself empty, makes {} plausible
    assert PlausibilityGate({"type": "object", "properties": {}}).reason({}) is None
    assert PlausibilityGate(settings, [{}]).reason({}) is None


def test_a_key_the_schema_does_not_name_needs_a_letter_or_digit():
    open_map = {"type": "object", "properties": {"name": {"type": "string"}, "+": {
        "type": "string"}}, "additionalProperties": {"type": "string"}}
    gate = PlausibilityGate(open_map)
    assert gate.reason({"name": "Ann Lee", ":": " and "}) == "implausible key: ':' names no field"
    assert gate.reason({"name": "Ann Lee", "tags": {"": "x"}}) == "implausible key: '' names no field"
    assert gate.reason({"name": "Ann Lee", "x-trace": "on", "+": "plus"}) is None
    assert PlausibilityGate(open_map, [{"name": "Bo Li", "~": "x"}]).reason(
        {"name": "Ann Lee", "~": "y"}) is None


def test_a_value_cut_at_the_decoders_own_bound_is_rejected_but_not_at_the_schemas():
    """A string whose schema sets no maxLength is decoded with MAX_STRING: a value that
    reaches it ran on and was cut mid-word. One the schema bounds may fill its bound."""
    from simulacra.schema import load_schema
    from simulacra.schema.model import MAX_STRING

    schema = {"type": "object", "properties": {
        "bio": {"type": "string"}, "motto": {"type": "string", "maxLength": 30}}}
    gate = PlausibilityGate(load_schema(schema).decoding_schema())
    run_on = ("Grew up by the sea and " * 20)[:MAX_STRING]
    assert gate.reason({"bio": run_on, "motto": "Slow and steady"}).startswith(
        "implausible cut: bio")
    assert gate.reason({"bio": run_on[:MAX_STRING - 1], "motto": "Slow and steady"}) is None
    assert gate.reason({"bio": "Grew up by the sea.", "motto": "x" * 29 + "y"}) is None


@pytest.mark.parametrize(("text", "punctuation"), [
    ('}, ', True), ('":{"', True), ("Tim},{", True), (">", True), ("!!!", True),
    ("Kettle (1.7 l)", False), ("{x} and {{y}}", False), ("", False), ("7", False)])
def test_punctuation_is_json_bits_or_no_letter_or_digit(text, punctuation):
    from simulacra.checks.plausible import is_punctuation

    assert is_punctuation(text) is punctuation

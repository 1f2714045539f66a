"""A string value does not start with JSON structure (`}`, `]`, `,`, `:`): the small model that
writes `"partition": "}, "` meant to close the object after the grammar had opened a string."""

from __future__ import annotations

import json
import re

import pytest

from simulacra.backends._decode import _JsonLexer
from simulacra.backends.base import Request


def lexed(text: str) -> _JsonLexer:
    lexer = _JsonLexer()
    lexer.feed(text.encode())
    return lexer


@pytest.mark.parametrize("text", ['{"a":"', '{"a": "', '["', '{"a":["x", "', '{"a":{"b":1},"c":"',
                                  '[{"a":1}, "'])
def test_a_string_after_a_colon_or_in_a_list_is_a_value(text):
    assert lexed(text).opens_value


@pytest.mark.parametrize("text", ['{"', '{"a":"x", "', '{"a":["x"],"', '[{"', '{"a":"x"', '{"a":"x'])
def test_a_key_or_a_string_under_way_is_not_a_value_opening(text):
    assert not lexed(text).opens_value


@pytest.mark.parametrize("text, due", [('{"a":', True), ('{"a": ', True), ('[', True), ('[1, ', True),
                                       ('{', False), ('{"a":1,', False), ('{"a":1', False),
                                       ('{"a":"x"', False), ('{"a":tru', False), ('{"a":[]', False)])
def test_the_lexer_knows_where_a_value_is_due(text, due):
    assert lexed(text).value_due is due


NOTE = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                         "note": {"type": "string", "maxLength": 20}},
        "required": ["name", "note"], "additionalProperties": False}


@pytest.mark.embedded
def test_the_model_cannot_open_a_value_with_structure(embedded):
    """The prompt's every note is `": "`: the model copies it unless the decoder stops it
    (checked to fail without the rule)."""
    lines = [{"name": n, "note": ": "} for n in ("Ana", "Bo", "Cy", "Di", "Ed", "Flo")]
    prompt = "Records, one JSON object per line.\n" + "".join(
        json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    asked = [Request(prompt=prompt, json_schema=NOTE, max_tokens=40, seed=s,
                     separators=(",", ":")) for s in range(4)]
    notes = [json.loads(c.text)["note"] for c in embedded.complete(asked)]
    assert not any(n.lstrip()[:1] in ("}", "]", ",", ":") for n in notes), notes


@pytest.mark.embedded
@pytest.mark.parametrize("pattern, prompt", [
    ("^:[a-z]{2,5}$", "A tag as JSON:\n"),               # opens with structure
    ("^[0-9]{30}$", "A 30-digit code as JSON:\n"),       # more digits than MAX_STRING_DIGITS
])
def test_what_a_pattern_asks_for_is_still_written(embedded, pattern, prompt):
    """Both masks step back where the grammar allows nothing else."""
    value = {"type": "object", "properties": {"value": {"type": "string", "pattern": pattern}},
             "required": ["value"], "additionalProperties": False}
    asked = [Request(prompt=prompt, json_schema=value, max_tokens=50, seed=1)]
    (reply,) = embedded.complete(asked)
    assert re.fullmatch(pattern.strip("^$"), json.loads(reply.text)["value"])


@pytest.mark.parametrize("text, run", [('{"a":"12', 2), ('{"a":"12x345', 3), ('{"a":1234', 0),
                                       ('{"a":"', 0), ('{"a":"1 2', 1), ('{"a":"9", "b":"', 0)])
def test_the_lexer_counts_a_strings_last_digits(text, run):
    assert lexed(text).digit_run == run


def test_many_digits_count_only_inside_a_string():
    from simulacra.backends._decode import MAX_STRING_DIGITS

    digits = "7" * MAX_STRING_DIGITS
    assert lexed('{"a":"' + digits).digits_are_many
    assert not lexed('{"a":"' + digits[1:]).digits_are_many
    assert not lexed('{"a":"' + digits + '"').digits_are_many


AMOUNT = {"type": "object",
          "properties": {"amount": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"}},
          "required": ["amount"], "additionalProperties": False}


@pytest.mark.embedded
def test_a_string_of_digits_ends_where_the_pattern_lets_it(embedded):
    """The prompt's amounts are 40 digits long; a pattern's unbounded `+` takes no more than
    MAX_STRING_DIGITS digits in a row when the grammar allows something else (checked to
    fail without the rule: the model copies the 40)."""
    from simulacra.backends._decode import MAX_STRING_DIGITS

    lines = [{"amount": str(10 ** 39 * k + 7 * k)[:40] + ".50"} for k in range(1, 7)]
    prompt = "Invoices, one JSON object per line.\n" + "".join(
        json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    asked = [Request(prompt=prompt, json_schema=AMOUNT, max_tokens=80, seed=s,
                     separators=(",", ":")) for s in range(3)]
    amounts = [json.loads(c.text)["amount"] for c in embedded.complete(asked)]
    assert all(re.fullmatch(r"[0-9]+\.[0-9]{2}", a) for a in amounts), amounts
    assert max(len(a.split(".")[0]) for a in amounts) == MAX_STRING_DIGITS, amounts

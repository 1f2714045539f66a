"""The patterns formats are decoded with: every string they allow passes `jsonschema`'s own
format check, and llguidance compiles each of them with a length bound."""

from __future__ import annotations

import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulacra.schema import load_schema
from simulacra.schema.grammar import compile_grammar
from simulacra.schema.model import FORMAT_PATTERNS

CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER
# simulacra does not install jsonschema's IRI checker (docs/schema-support.md); every URI is
# an IRI (RFC 3987, section 2), so an IRI pattern is checked as the URI it also is
AS_URI = {"iri": "uri", "iri-reference": "uri-reference"}


@pytest.mark.parametrize("fmt", sorted(FORMAT_PATTERNS))
def test_every_string_a_format_pattern_allows_passes_the_format_check(fmt):
    checked = fmt if fmt in CHECKER.checkers else AS_URI.get(fmt, fmt)
    assert checked in CHECKER.checkers, f"jsonschema has no checker for {fmt}"

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(re.compile(FORMAT_PATTERNS[fmt]), fullmatch=True))
    def check(value):
        CHECKER.check(value, checked)  # raises FormatError with the reason

    check()


@pytest.mark.parametrize("fmt", sorted(FORMAT_PATTERNS))
def test_a_formatted_string_is_decoded_anchored_and_bounded(fmt):
    decoding = load_schema({"type": "string", "format": fmt}).decoding_schema()
    assert decoding["pattern"].startswith("^") and decoding["pattern"].endswith("$")
    assert decoding["maxLength"] <= 128 and "format" not in decoding
    assert compile_grammar(decoding).unenforced == ()


def test_a_format_without_a_pattern_still_gets_a_length_bound():
    decoding = load_schema({"type": "string", "format": "ipv4"}).decoding_schema()
    assert decoding["format"] == "ipv4" and decoding["maxLength"] == 64

"""Free text ends at a sentence once it is past its usual length, not mid-word at its bound."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import BaseModel, Field

from simulacra import Generator
from simulacra.backends._decode import _JsonLexer
from simulacra.backends.base import Request
from simulacra.schema import load_schema


def lexed(text: str) -> _JsonLexer:
    lexer = _JsonLexer()
    lexer.feed(text.encode())
    return lexer


def test_the_lexer_knows_the_key_the_length_and_a_sentence_end():
    lexer = lexed('{"name":"Ana","about":"Buys gear. Reads reviews.')
    assert lexer.in_string and lexer.key == b"about"
    assert lexer.chars == len("Buys gear. Reads reviews.") and lexer.ended_sentence
    lexer.feed(b" Then")
    assert not lexer.ended_sentence
    lexer.feed(b'","tags":["a","Soft."')   # a string in a list belongs to the list's key
    assert not lexer.in_string and lexer.key == b"tags"
    lexer.feed(b',"Sure.')
    assert lexer.key == b"tags" and lexer.chars == 5 and lexer.ended_sentence


@pytest.mark.parametrize("text", ["costs 3.", "by John F.", "Node.js v1.", "wow!!"])
def test_a_decimal_point_an_initial_or_a_lone_symbol_is_no_sentence_end(text):
    assert not lexed('{"a":"' + text).ended_sentence


@pytest.mark.parametrize("text", ["她喜欢读书。", "本当に！", "यह अच्छा है।"])
def test_the_full_stops_of_other_scripts_end_a_sentence(text):
    assert lexed('{"a":"' + text).ended_sentence


def test_characters_are_counted_not_bytes():
    assert lexed('{"a":"Zoë Müller."').chars == len("Zoë Müller.")
    assert lexed('{"a":"Zoë Müller.').ended_sentence


class Customer(BaseModel):
    full_name: str
    about: str = Field(description="one or two sentences about the customer")


EXAMPLES = [
    {"full_name": "Ines Varga",
     "about": "Buys dive gear twice a year and always reads the reviews first."},
    {"full_name": "Tobias Lindqvist",
     "about": "Orders flour and packaging in bulk; prefers delivery before 7 am."},
    {"full_name": "Adaeze Okafor",
     "about": "New customer, came through a referral and asked about warranty terms."},
]


@pytest.mark.embedded
def test_free_text_past_its_usual_length_ends_at_a_sentence(embedded):
    """Before, `about` was cut at 64 characters, mid-word, in most records."""
    gen = Generator(Customer, model=embedded, examples=EXAMPLES, seed=5,
                    subject="customers of an online shop")
    records = gen.generate(8)
    usual = max(len(e["about"]) for e in EXAMPLES)
    assert all(r.about.rstrip()[-1] in ".!?" for r in records if len(r.about) > usual)
    assert any(len(r.about) > 64 for r in records)   # no longer bounded at 64


@pytest.mark.embedded
def test_without_usual_lengths_a_string_runs_on_to_its_bound(embedded):
    """The request's end_text_after is what ends the text: without it, the 270M model
    writes past a sentence end (the test fails if the decoder ends strings on its own)."""
    decoding = load_schema(Customer).decoding_schema()
    lines = [{"full_name": e["full_name"], "about": f"{e['about']} {more}"} for e, more in
             zip(EXAMPLES, ["Lives by the sea.", "Pays on time.", "Likes to call first."],
                 strict=True)]
    prompt = "Customers, one JSON object per line.\n" + "".join(
        json.dumps(line) + "\n" for line in lines)
    asked = [Request(prompt=prompt, json_schema=decoding, max_tokens=200, seed=s,
                     end_text_after=ends) for s in range(6) for ends in ({}, {"": 20})]
    abouts = [json.loads(c.text)["about"] for c in embedded.complete(asked)]
    free, ended = abouts[0::2], abouts[1::2]
    assert not any(_goes_on_after_a_sentence_past(a, 20) for a in ended), ended
    assert any(_goes_on_after_a_sentence_past(a, 20) for a in free), free


def _goes_on_after_a_sentence_past(text: str, usual: int) -> bool:
    """Whether `text` has a sentence end at or past `usual` characters and more after it."""
    return any(m.end() >= usual for m in re.finditer(r"[^\W\d_]{2}[.!?]", text[:-1]))

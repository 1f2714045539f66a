"""Drafted examples: how many a run drafts, and which drafts it keeps (engine/drafts.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from simulacra.backends.base import Capabilities
from simulacra.backends.fake import ScriptedBackend
from simulacra.engine.drafts import DRAFTS, MIN_RUN, drafts_for, with_drafted_examples
from simulacra.plan import Plan
from simulacra.schema import load_schema


class Review(BaseModel):
    product: str
    title: str


DRAFTED = [("Stainless steel french press", "Keeps coffee hot"),
           ("Walnut desk lamp", "Warm light"), ("Travel mug", "Leaks a little"),
           ("Garden hose", "Too short for me")]


def test_a_short_run_drafts_a_quarter_of_its_size_and_a_tiny_one_none():
    assert drafts_for(2) == drafts_for(MIN_RUN - 1) == 0
    assert drafts_for(16) == 4 and drafts_for(40) == 10
    assert drafts_for(10_000) == DRAFTS


def test_the_drafts_the_model_reads_as_most_natural_are_kept():
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=4)).enqueue(
        *(json.dumps({"product": p, "title": t}) for p, t in DRAFTED))
    read = []

    def logprob_per_char(prompt, text):   # this "model" finds the french press unlikely
        read.append((prompt, text))
        return -9.0 if "press" in text else -1.0

    fake.logprob_per_char = logprob_per_char
    plan = Plan.build(load_schema(Review), subject="product reviews")
    drafted_plan, drafted = with_drafted_examples(fake, plan, 16, seed=1, temperature=0.8,
                                                  diversity=0.5)
    assert drafted == 4 and len(drafted_plan.examples) == 3
    assert "Stainless steel french press" not in [e["product"] for e in drafted_plan.examples]
    assert ("Synthetic data: product reviews records (Review).\n\nOne of these records, "
            "described in words:\n", "product: Walnut desk lamp; title: Warm light.") in read


def test_an_endpoint_never_drafts():
    fake = ScriptedBackend()   # no grammar: drafts would cost as much as records
    plan = Plan.build(load_schema(Review))
    assert with_drafted_examples(fake, plan, 500, seed=1, temperature=0.8,
                                 diversity=0.5) == (plan, 0)


@pytest.mark.embedded
def test_the_embedded_model_reads_words_as_more_natural_than_serial_numbers(embedded):
    intro = "Synthetic data: product reviews records (Review).\n\nOne of these records, " \
            "described in words:\n"
    read = [embedded.logprob_per_char(intro, text) for text in (
        "product: Stainless steel french press; title: Keeps my coffee hot all morning.",
        "product: 22.06.00026367685; title: 22.06.00026367685.",
        'product: ":{"; title: "}, {".', "product: a; title: A.")]
    # measured: -1.07 per character for the words; -1.26, -2.29 and -1.61 for the others
    assert read[0] == max(read)

"""Drafted examples: how many a run drafts, and which drafts it keeps (engine/drafts.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from simulacra.backends.base import Capabilities
from simulacra.backends.fake import ScriptedBackend
from simulacra.checks.plausible import PlausibilityGate
from simulacra.engine.drafts import (
    DRAFT_ROUNDS,
    DRAFTS,
    MIN_RUN,
    NEUTRAL,
    choose,
    drafts_for,
    field_fit,
    null_share,
    templated,
    weak_share,
    with_drafted_examples,
)
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


def test_a_draft_the_model_reads_as_unnatural_is_not_kept():
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=4)).enqueue(
        *(json.dumps({"product": p, "title": t}) for p, t in DRAFTED))
    read = []

    def logprob_per_char(prompt, text):   # this "model" finds the french press no product
        read.append((prompt, text))
        return -9.0 if "press" in text and prompt.endswith("product: ") else -1.0

    fake.logprob_per_char = logprob_per_char
    plan = Plan.build(load_schema(Review), subject="product reviews")
    drafted_plan, drafted = with_drafted_examples(fake, plan, 16, seed=1, temperature=0.8,
                                                  diversity=0.5)
    assert drafted == 4 and len(drafted_plan.examples) == 3
    assert "Stainless steel french press" not in [e["product"] for e in drafted_plan.examples]
    intro = "Synthetic data: product reviews records (Review).\n\nOne of these records, " \
            "described in words:\n"
    assert (intro + "product: ", "Walnut desk lamp") in read
    assert (intro + "title: ", "Warm light") in read and (NEUTRAL, "Warm light") in read


def test_the_blandest_drafts_do_not_win_on_likelihood_alone():
    class Person(BaseModel):
        full_name: str
        city: str

    drafted = [("Michael", "Chicago"), ("David", "Boston"), ("Ines Varga", "Porto Alegre"),
               ("Tobias Lindqvist", "Santa Fe")]
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=4)).enqueue(
        *(json.dumps({"full_name": n, "city": c}) for n, c in drafted))
    def logprob_per_char(prompt, text):
        # the one-word names are likelier everywhere; the full names only after "full name: "
        if text in ("Michael", "David"):
            return -0.9
        return -1.1 if prompt.endswith("full name: ") else -1.6

    fake.logprob_per_char = logprob_per_char
    plan = Plan.build(load_schema(Person), subject="customers")
    chosen, _ = with_drafted_examples(fake, plan, 16, seed=1, temperature=0.8, diversity=0.5)
    assert [e["full_name"] for e in chosen.examples][:2] == ["Ines Varga", "Tobias Lindqvist"]


def test_drafts_with_values_too_short_to_vary_rank_last_whatever_the_model_reads():
    class Billing(BaseModel):
        patient_name: str
        diagnosis_code: str

    drafted = [("Anna Berg", "7"), ("Tom Hale", "0"), ("Mira Ost", "K52.9"),
               ("Jon Pike", "1"), ("Ines Varga", "E11.65"),
               # two clean drafts of five: two more rounds, whose drafts are all short
               ("Lea Moss", "3"), ("Ben Ode", "4"), ("Kai Rau", "5"), ("Uma Lind", "6"),
               ("Noor Haq", "8"), ("Ivo Sand", "9"), ("Eli Voss", "2"), ("Ada Kern", "Q"),
               ("Sam Ruiz", "X"), ("Lin Bo", "Z")]
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=5)).enqueue(
        *(json.dumps({"patient_name": n, "diagnosis_code": c}) for n, c in drafted))

    def logprob_per_char(prompt, text):   # a lone digit after a code's name reads best
        if prompt.endswith("diagnosis code: ") and text.isdigit():
            return 4.0
        return -1.0

    fake.logprob_per_char = logprob_per_char
    plan = Plan.build(load_schema(Billing), subject="medical billing records")
    chosen, drafted_n = with_drafted_examples(fake, plan, 20, seed=1, temperature=0.8,
                                              diversity=0.5)
    assert drafted_n == 5 * DRAFT_ROUNDS   # and no more, though still too few are clean
    codes = [e["diagnosis_code"] for e in chosen.examples]
    assert codes[:2] == ["K52.9", "E11.65"] or codes[:2] == ["E11.65", "K52.9"]
    assert len(codes[2]) == 1   # only then the short ones, ranked as before
    assert weak_share(PlausibilityGate(plan.schema.decoding_schema(), []),
                        {"patient_name": "Al", "diagnosis_code": " 7 "}) == 1.0


TITLES = ["Warm light", "Leaks a little", "Too short for me", "Keeps coffee hot", "Worth it",
          "Broke in a week", "Heavier than it looks", "Gift for my dad", "Smells of plastic",
          "Quiet and quick", "Arrived late", "Better than the old one", "Too loud at night",
          "Sturdy lid", "Colour as shown", "Cheap and cheerful", "Hard to clean",
          "Does the job"]


def test_drafts_that_read_as_templates_or_addresses_rank_after_those_that_read_as_data():
    real = ["Walnut desk lamp", "Travel mug", "Garden hose"]
    templates = ["Item Name 1", "amazon.com", "{{price}} off", "Item Name 2", "www.shop.example",
                 "this.product.name", "Product A", "Product B", "https://example.org/x",
                 "Item Name 3", "ebay.com", "{{price}} on", "Product C", "shop.example.net",
                 "item.name.value"]
    drafted = [*templates[:3], *real, *templates[3:]]   # three rounds of six
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=6)).enqueue(
        *(json.dumps({"product": p, "title": t}) for p, t in zip(drafted, TITLES, strict=True)))

    def logprob_per_char(prompt, text):
        # the model reads the templates best of all, and the real products worse after their
        # field's name than after the neutral cue: their scores fall below zero, so no draft
        # is clean and the run drafts three rounds
        if text in templates:
            return -0.5
        return -1.0 if prompt == NEUTRAL else -4.0

    fake.logprob_per_char = logprob_per_char
    plan = Plan.build(load_schema(Review), subject="product reviews")
    chosen, drafted_n = with_drafted_examples(fake, plan, 24, seed=1, temperature=0.8,
                                              diversity=0.5)
    assert drafted_n == 6 * DRAFT_ROUNDS
    assert sorted(e["product"] for e in chosen.examples) == sorted(real)


def test_a_run_drafts_again_while_too_few_drafts_are_clean():
    first = [("Item Name 1", "Item Title 1"), ("amazon.com", "Great seller"),
             ("Walnut desk lamp", "Warm light"), ("Travel mug", "ok")]
    second = [("Garden hose", "Too short for me"), ("Cast iron skillet", "Heavy, worth it"),
              ("Tea kettle", "Whistles loudly"), ("Desk fan", "Quiet enough")]
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=4)).enqueue(
        *(json.dumps({"product": p, "title": t}) for p, t in first + second))
    plan = Plan.build(load_schema(Review), subject="product reviews")
    chosen, drafted_n = with_drafted_examples(fake, plan, 16, seed=1, temperature=0.8,
                                              diversity=0.5)
    assert drafted_n == 8   # one clean draft of four, then four more: enough, so no third round
    products = {e["product"] for e in chosen.examples}
    assert "Walnut desk lamp" in products and len(products & {p for p, _ in second}) == 2


def test_templated_knows_slots_code_addresses_and_numbered_field_names():
    class Shop(BaseModel):
        product: str
        website: str

    gate = PlausibilityGate(load_schema(Shop).decoding_schema(), [])
    for text in ("{{ price }}", "${name}", "this.product.name", "com.apple.iphone",
                 "https://example.org/p/1", "www.shop.example", "amazon.com",
                 "page_4.html", "Item Name 1", "Product A", "my product", "Test product",
                 "Name (string or null, optional)"):
        assert templated(gate, ("product",), text), text
    for text in ("iPhone X", "U.S.A. road atlas", "Walnut desk lamp, 40 cm", "Model 3",
                 "Product of Italy: olive oil"):
        assert not templated(gate, ("product",), text), text
    assert not templated(gate, ("website",), "amazon.com")   # the field calls for an address


class Rated(BaseModel):
    product: str
    reviewer: str | None = None


def test_drafts_that_fill_a_field_rank_before_those_that_leave_it_null():
    drafted = [("Walnut desk lamp", None), ("Garden hose, 25 m", None),
               ("Travel mug", "Ana R."), ("Cast iron skillet", "Kwame O.")]
    fake = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=4)).enqueue(
        *(json.dumps({"product": p, "reviewer": r}) for p, r in drafted))

    def logprob_per_char(prompt, text):   # the drafts with a reviewer read worst of the four
        return -3.0 if text in ("Travel mug", "Ana R.", "Cast iron skillet", "Kwame O.") \
            else -1.0

    fake.logprob_per_char = logprob_per_char
    plan = Plan.build(load_schema(Rated), subject="product reviews")
    chosen, _ = with_drafted_examples(fake, plan, 16, seed=1, temperature=0.8, diversity=0.5)
    assert sorted(e["reviewer"] or "" for e in chosen.examples) == ["", "Ana R.", "Kwame O."]
    gate = PlausibilityGate(plan.schema.decoding_schema(), [])
    assert null_share(gate, {"product": "Travel mug", "reviewer": None}) == 0.5
    assert null_share(gate, {"product": "Travel mug"}) == 0.5   # left out counts as null
    assert null_share(gate, {"product": "Travel mug", "reviewer": "Ana R."}) == 0.0

    class Listed(BaseModel):   # a list's items are not fields a draft leaves null
        product: str
        tags: list[str]

    listed = PlausibilityGate(load_schema(Listed).decoding_schema(), [])
    assert null_share(listed, {"product": "Travel mug", "tags": []}) == 0.0


def test_the_last_example_shows_a_field_the_others_leave_null():
    gate = PlausibilityGate(load_schema(Rated).decoding_schema(), [])
    ranked = [{"product": "Walnut desk lamp", "reviewer": None},
              {"product": "Garden hose, 25 m", "reviewer": None},
              {"product": "Travel mug", "reviewer": None},
              {"product": "Cast iron skillet", "reviewer": "Kwame O."}]
    assert [e["reviewer"] for e in choose(gate, ranked, [], 3)] == [None, None, "Kwame O."]
    # an example the user gave that shows the field already covers it
    given = [{"product": "Tea kettle", "reviewer": "Li"}]
    assert choose(gate, ranked, given, 2) == ranked[:2]


def test_choose_takes_at_most_the_places_wanted():
    gate = PlausibilityGate(load_schema(Review).decoding_schema(), [])
    ranked = [{"product": p, "title": t} for p, t in DRAFTED]
    assert choose(gate, ranked, [], 0) == []
    assert choose(gate, ranked, [], 2) == ranked[:2]
    assert choose(gate, ranked[:1], [], 3) == ranked[:1]


def test_an_endpoint_never_drafts():
    fake = ScriptedBackend()   # no grammar: drafts would cost as much as records
    plan = Plan.build(load_schema(Review))
    assert with_drafted_examples(fake, plan, 500, seed=1, temperature=0.8,
                                 diversity=0.5) == (plan, 0)


@pytest.mark.embedded
def test_on_the_embedded_model_a_product_fits_the_product_field_better_than_filler(embedded):
    class Product(BaseModel):
        product: str

    gate = PlausibilityGate(load_schema(Product).decoding_schema(), [])
    intro = "Synthetic data: product reviews records (Review).\n\nOne of these records, " \
            "described in words:\n"
    fit = {v: field_fit(embedded.logprob_per_char, intro, gate, {"product": v}) for v in (
        "Stainless steel french press", "Apple Watch SE", "some of them", "the one we love")}
    # measured: -0.24 and -0.37 per character against -1.35 and -0.94 for the filler
    assert min(fit["Stainless steel french press"], fit["Apple Watch SE"]) > \
        max(fit["some of them"], fit["the one we love"])

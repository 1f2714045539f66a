"""TextWriter: grounding rules on hand-made cases, and the tutorial's inputs on the embedded model."""

from __future__ import annotations

import re

import pytest

from simulacra.backends._decode import _Grounding
from simulacra.backends.fake import ScriptedBackend
from simulacra.errors import UsageError
from simulacra.text import (
    TextWriter,
    field_labels,
    field_values,
    finish_text,
    min_length,
    missing_values,
)

TUTORIAL_CHAIN_INPUTS = [
    {"fields": ["blue", "yellow"], "preferences": {}},
    {"fields": {"colors": ["blue", "yellow"]},
     "preferences": {"style": "Make it in a style of a weather forecast."}},
    {"fields": {"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]}, "preferences": None},
    {"fields": [{"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]},
                {"actor": "Mads Mikkelsen", "movies": ["Hannibal", "Another round"]}],
     "preferences": {"minimum_length": 200, "style": "gossip"}},
]
ACTORS = [
    {"Actor": "Tom Hanks", "Film": ["Forrest Gump", "Saving Private Ryan", "The Green Mile",
                                    "Toy Story", "Catch Me If You Can"]},
    {"Actor": "Tom Hardy", "Film": ["Inception", "The Dark Knight Rises", "Mad Max: Fury Road",
                                    "The Revenant", "Dunkirk"]},
]


def test_field_values_flatten_lists_dicts_and_numbers():
    assert field_values(TUTORIAL_CHAIN_INPUTS[3]["fields"]) == [
        "Tom Hanks", "Forrest Gump", "Green Mile", "Mads Mikkelsen", "Hannibal", "Another round"]
    assert field_values({"total": 500.0, "rate": 0.5, "ok": True, "none": None}) == ["500", "0.5"]


def test_field_labels_name_each_value_by_its_key_spaced():
    fields = {"patient_id": 7, "fullName": "Ann Lee", "films": ["A", "B"], "none": None,
              "visit": {"total-charge": 5.0}}
    assert field_values(fields) == ["7", "Ann Lee", "A", "B", "5"]
    assert field_labels(fields) == ["patient id", "full name", "films", "", "total charge"]
    assert field_labels(["blue", "yellow"]) == ["", ""]
    actors = TUTORIAL_CHAIN_INPUTS[3]["fields"]   # a list of records: each record's keys
    assert field_labels(actors) == ["actor", "movies", "", "actor", "movies", ""]
    assert field_labels({"films": []}) == [] and field_labels({"tags": [None, "a"]}) == ["tags"]
    for item in [*TUTORIAL_CHAIN_INPUTS, *ACTORS, fields]:   # one label for every value
        item = item.get("fields", item) if isinstance(item, dict) else item
        assert len(field_labels(item)) == len(field_values(item))


def _write(grounding: _Grounding, pieces: list[str]) -> str:
    """Feed the model's pieces one by one, inserting what the grounding asks for (as the
    decoder does), and return the text."""
    for piece in pieces:
        grounding.feed(piece)
        if insert := grounding.due():
            grounding.feed(insert)
    return grounding.text


def test_a_named_field_gets_its_own_value_and_an_inserted_value_its_name():
    g = _Grounding(["575002", "Carolyn", "250"], 0, ["patient id", "patient name", "total charge"])
    g.feed(g.due())   # the first value opens the text, bare
    text = _write(g, [" was seen", " for a cough; Procedure code:", " 99", " and", " the patient",
                      " name", " ", "X. Then", " total_charge:", " whatever", " and more", ","])
    assert text.startswith(" 575002 was seen")
    assert "Procedure code: 99" in text          # another field's name: its value is not put there
    assert "patient name Carolyn" in text        # the model named the field: its value follows
    assert "total_charge: 250" in text           # the key as written works too, after grounding
    assert g.satisfied
    g = _Grounding(["575002", "250"], 0, ["patient id", "total charge"])
    g.feed(g.due())
    text = _write(g, [" was seen for a cough in the winter of the year before the last one", " "])
    assert text.endswith("one total charge 250")   # inserted mid-text, it says which field it is
    g = _Grounding(["575002", "250"], 0, ["patient id", "total charge"])
    g.feed(g.due())
    text = _write(g, [" was seen for a cough; code H11.", "3 in the winter of the year before.", " It"])
    assert "code H11.3 in" in text                # not inside a code,
    assert "before. Total charge 250 It" in text  # but after a sentence
    g = _Grounding(["7", "see note:"], 0, ["id", "note"])   # a value ending in its own name
    assert _write(g, ["7", " and the note:", " "]) == "7 and the note: see note: "
    g = _Grounding(["7", "250"], 0, ["id", "total charge"])   # after a currency sign, no space
    assert _write(g, ["7", " cost total charge: $", "."]) == "7 cost total charge: $250."
    g = _Grounding(["Paris"], 0, ["city"])       # one word names a field only before ":" or "="
    assert _write(g, ["Paris", " is a city", " "]) == "Paris is a city "


def test_grounding_ignores_case_quotes_and_spacing_but_not_missing_words():
    text = "We loved \u201cforrest  gump\u201d and The GREEN mile."
    assert missing_values(text, ["Forrest Gump", "The Green Mile", "Toy Story"]) == ["Toy Story"]


def test_min_length_reads_every_spelling_and_refuses_nonsense():
    assert min_length({"minimal length": 500}) == 500
    assert min_length({"minimum_length": 200}) == 200
    assert min_length(None) == 0
    with pytest.raises(UsageError, match="must be a number"):
        min_length({"min_length": "long"})


def test_ungrounded_text_is_rewritten_then_reported():
    fake = ScriptedBackend().enqueue("Only blue here.", "Still only blue.", "Blue and yellow!")
    result = TextWriter(fake, seed=1, max_attempts=3).write(["blue", "yellow"])
    assert result.grounded and result.attempts == 3 and result.text == "Blue and yellow!"
    assert fake.history[0].must_include == ("blue", "yellow")
    fake = ScriptedBackend().enqueue("Only blue.", "Only blue again.")
    result = TextWriter(fake, seed=1, max_attempts=2).write(["blue", "yellow"])
    assert not result.grounded and result.missing == ["yellow"]


def test_too_short_text_is_rewritten():
    fake = ScriptedBackend().enqueue("blue", "blue " * 30)
    result = TextWriter(fake, {"min_length": 100}, seed=1).write(["blue"])
    assert result.attempts == 2 and len(result.text) >= 100 and fake.history[0].min_chars == 100


def test_chain_call_and_many_keep_the_tutorial_shape():
    fake = ScriptedBackend().enqueue("blue and yellow", "Tom Hanks in Forrest Gump")
    writer = TextWriter(fake, seed=1)
    out = writer({"fields": ["blue", "yellow"], "preferences": {}})
    assert out == {"fields": ["blue", "yellow"], "preferences": {}, "text": "blue and yellow"}
    [row] = writer.many([{"actor": "Tom Hanks", "movie": "Forrest Gump"}])
    assert set(row) == {"fields", "preferences", "text"}


@pytest.mark.embedded
def test_tutorial_chain_inputs_give_grounded_texts(embedded):
    writer = TextWriter(embedded, seed=3)
    for item in TUTORIAL_CHAIN_INPUTS:
        result = writer.write(item["fields"], item["preferences"])
        assert result.grounded, (item, result.text, result.missing)
        assert not missing_values(result.text, field_values(item["fields"]))
        assert len(result.text) >= min_length(item["preferences"])


def test_a_cut_text_ends_on_its_last_full_sentence_or_clause():
    values = ["Ana Ortiz", "K21.1"]
    assert finish_text("Ana Ortiz has K21.1. She went home and", values, 10) == \
        "Ana Ortiz has K21.1."
    # no sentence end to go back to: the last clause, not a field's name without its value
    assert finish_text("patient_name: Ana Ortiz; diagnosis_code: K21.1; procedure_code:",
                       values, 10) == "patient_name: Ana Ortiz; diagnosis_code: K21.1."
    # a cut that would lose a value or the length keeps the text as it is
    assert finish_text("patient_name: Ana Ortiz; diagnosis_code: K21", values, 10) == \
        "patient_name: Ana Ortiz; diagnosis_code: K21"
    assert finish_text("Ana Ortiz, K21.1, and", values, 30) == "Ana Ortiz, K21.1, and"
    assert finish_text("Ana Ortiz has K21.1.", values, 10) == "Ana Ortiz has K21.1."


@pytest.mark.embedded
def test_each_field_named_in_a_text_is_followed_by_its_own_value(embedded):
    bills = [{"patient_id": 575002, "patient_name": "Carolyn Reyes", "diagnosis_code": "H21.3",
              "procedure_code": "99213", "total_charge": 250.0, "insurance_claim_amount": 410.0},
             {"patient_id": 284832, "patient_name": "Jonah Smith", "diagnosis_code": "W14.0",
              "procedure_code": "10096", "total_charge": 60.0, "insurance_claim_amount": 80.0},
             {"patient_id": 821494, "patient_name": "Ana Ortiz", "diagnosis_code": "K21.1",
              "procedure_code": "59447", "total_charge": 900.0, "insurance_claim_amount": 750.0}]
    named = 0
    for bill, result in zip(bills, TextWriter(embedded, seed=4).write_many(bills), strict=True):
        for key, label, value in zip(bill, field_labels(bill), field_values(bill), strict=True):
            for said in re.finditer(rf"(?i)(?<![a-z_])(?:{key}|{label})\s*:\s*[$\"'(]?",
                                    result.text):
                named += 1
                assert result.text[said.end():].startswith(value), (key, result.text)
    assert named, "the model named no field in these texts; pick records or a seed where it does"


@pytest.mark.embedded
def test_tutorial_actor_dataset_has_every_film_in_500_characters(embedded):
    dataset = TextWriter(embedded, {"style": "informal", "minimal length": 500}, seed=5).many(ACTORS)
    assert [row["fields"] for row in dataset] == ACTORS
    for row in dataset:
        assert len(row["text"]) >= 500
        assert not missing_values(row["text"], row["fields"]["Film"])
        assert row["preferences"] == {"style": "informal", "minimal length": 500}

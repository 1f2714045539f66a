"""Extractor: spans, parsing, retries on hand-made cases; the tutorial's Actor texts on the real model."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from simulacra.backends.base import Capabilities
from simulacra.backends.fake import ScriptedBackend
from simulacra.extract import Extractor, extractive_schema, text_spans
from simulacra.parse import ReplyParseError, parse_reply
from simulacra.text import TextWriter
from tests.test_text import ACTORS


class Actor(BaseModel):
    Actor: str = Field(description="name of an actor")
    Film: list[str] = Field(description="list of names of films they starred in")


def test_spans_are_word_runs_trimmed_of_edge_punctuation():
    spans = text_spans('He starred in "Mad Max: Fury Road" (2015).', max_words=4)
    assert "Mad Max: Fury Road" in spans and "2015" in spans
    assert all(not s.endswith((".", '"', ")")) for s in spans)


def test_spans_cross_abbreviations_and_a_comma_before_a_number_but_not_clauses():
    spans = text_spans("Will it freeze on Jul. 7, 2038 near Harry T. Burleigh's farm at 10:31 "
                       "a.m. in Lyon? Tom Hardy, Robert Pattinson. Then rain")
    assert {"Jul. 7, 2038", "Harry T. Burleigh", "10:31 a.m. in Lyon"} <= set(spans)
    assert not [s for s in spans if "Hardy, Robert" in s or "Pattinson. Then" in s]
    # an abbreviation keeps its period; a word ending a sentence does not
    assert {"10:31 a.m.", "fri.", "larry mullen jr."} <= set(
        text_spans("Rain at 10:31 a.m.? On fri. play larry mullen jr."))
    assert "now" in text_spans("Play it now.") and "now." not in text_spans("Play it now.")


def test_phrases_the_examples_never_mark_are_not_offered_as_values():
    from simulacra.backends.base import Capabilities
    from simulacra.extract import Carriers

    examples = [("What is the weather in Paris", {"city": "Paris", "state": None, "condition": None}),
                ("What is the weather like in Utah", {"city": None, "state": "Utah", "condition": None}),
                ("Is the weather foggy in Lyon", {"city": "Lyon", "state": None, "condition": "foggy"})]
    carriers = Carriers(examples)
    assert {"weather", "the weather", "what is the weather", "in"} <= carriers.phrases
    assert "paris" not in carriers.phrases and "foggy" not in carriers.phrases
    grammar = ScriptedBackend(capabilities=Capabilities(grammar=True))
    js = Extractor(Weather, model=grammar, examples=examples).decoding_schema(
        "What is the weather in Oslo", many=False)
    offered = js["properties"]["city"]["anyOf"][0]["enum"]
    assert "Oslo" in offered and "weather" not in offered and "What is" not in offered
    # a span edged by a carrier word goes when that word is lowercase or opens the text
    assert "weather in Oslo" not in offered and "What" not in offered
    assert carriers.offered(["The Weather Girls", "the weather girls", "Weather Report"],
                            "Is The Weather Girls on? the weather girls? Weather Report?") \
        == ["The Weather Girls", "Weather Report"]


def test_list_items_come_back_in_the_order_the_text_states_them():
    fake = ScriptedBackend(['{"Actor": "Tom Hardy", "Film": ["Dunkirk", "Inception"]}'])
    actor = Extractor(Actor, model=fake).extract("Tom Hardy was in Inception and in Dunkirk.")
    assert actor.Film == ["Inception", "Dunkirk"]


def test_extractive_schema_limits_free_strings_to_spans_only():
    js = {"type": "object", "properties": {
        "name": {"type": "string"}, "day": {"type": "string", "format": "date"},
        "norm": {"type": "string", "x-extractive": False},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}}}}
    out = extractive_schema(js, ["Ann", "Lima", "Ann Lima"])
    assert out["properties"]["name"]["enum"] == ["Ann", "Lima", "Ann Lima"]
    assert "enum" not in out["properties"]["day"] and "enum" not in out["properties"]["norm"]
    assert out["properties"]["tags"]["items"]["enum"] == ["Ann"]


@pytest.mark.parametrize("reply, value", [
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('Here you go: {"a": [1, 2]} -- done', {"a": [1, 2]}),
    ("{'a': 'x', 'ok': True, 'none': None}", {"a": "x", "ok": True, "none": None}),
])
def test_tolerant_parser(reply, value):
    assert parse_reply(reply) == value


def test_parser_says_what_did_not_parse():
    with pytest.raises(ReplyParseError, match="no JSON object"):
        parse_reply("I cannot help with that.")
    with pytest.raises(ReplyParseError, match="invalid JSON: Expecting ',' delimiter"):
        parse_reply('{"a": 1 "b": 2}')


def test_invalid_reply_is_retried_with_the_error():
    fake = ScriptedBackend().enqueue('{"Actor": "Tom Hanks"}',
                                     '{"Actor": "Tom Hanks", "Film": ["Big"]}')
    extractor = Extractor(Actor, model=fake)
    assert extractor.extract("Tom Hanks was in Big.") == Actor(Actor="Tom Hanks", Film=["Big"])
    assert "Film" in fake.history[1].feedback
    assert extractor.stats.valid == 1 and extractor.stats.attempts == 2


def test_many_returns_every_record():
    fake = ScriptedBackend().enqueue('[{"Actor": "A", "Film": ["x"]}, {"Actor": "B", "Film": []}]')
    assert [a.Actor for a in Extractor(Actor, model=fake).extract_many("A in x; B")] == ["A", "B"]
    assert fake.history[0].json_schema["type"] == "array"


@pytest.mark.embedded
def test_tutorial_actor_texts_extract_back(embedded):
    texts = TextWriter(embedded, {"style": "informal", "minimal length": 500}, seed=5).many(ACTORS)
    extractor = Extractor(Actor, model=embedded)
    matched = {"Actor": 0, "Film": 0}
    for row, gold in zip(texts, ACTORS, strict=True):
        actor = extractor.extract(row["text"])
        assert isinstance(actor, Actor)
        assert all(f in row["text"] for f in actor.Film)  # extractive: copied, never invented
        matched["Actor"] += actor.Actor == gold["Actor"]
        matched["Film"] += len(set(actor.Film) & set(gold["Film"])) / len(gold["Film"])
    rates = {k: v / len(ACTORS) for k, v in matched.items()}
    print(f"per-field match rate on the embedded model: {rates}")
    # The 270M model misses some films; the rates are reported, and must stay clearly above
    # what the tutorial's own extraction managed on this model (it parsed 0 of 8 texts).
    assert rates["Actor"] >= 0.5
    assert rates["Film"] >= 0.4


def test_numbers_in_text_are_the_only_numbers_allowed():
    from simulacra.extract import text_numbers

    assert text_numbers("3 cups at 12.50 each, 1,250 in all, for two") == [3.0, 12.5, 1250.0, 2.0]
    js = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1},
                                           "p": {"type": "number"}}}
    out = extractive_schema(js, [], [0.0, 3.0, 12.5])
    assert out["properties"]["n"]["enum"] == [3] and out["properties"]["p"]["enum"] == [0, 3, 12.5]


def test_optional_fields_are_required_while_decoding():
    class Booking(BaseModel):
        name: str | None = None
        size: int | None = None

    fake = ScriptedBackend().enqueue('{"name": null, "size": null}')
    Extractor(Booking, model=fake).extract("nothing here")
    assert fake.history[0].json_schema["required"] == ["name", "size"]


class Weather(BaseModel):
    city: str | None = Field(None, description="the city the forecast is for")
    state: str | None = Field(None, description="the state or region")
    condition: str | None = Field(None, description="a weather condition: rain, snow, fog")


def test_one_span_is_not_copied_into_other_fields():
    fake = ScriptedBackend(['{"city": "Tahquamenon Falls", "state": "tahquamenon falls", '
                            '"condition": "fog"}'])
    record = Extractor(Weather, model=fake).extract("Will there be fog in Tahquamenon Falls?")
    assert record.model_dump() == {"city": "Tahquamenon Falls", "state": None, "condition": "fog"}


def test_labelled_examples_soften_the_push_away_from_null_and_drop_weak_values():
    zero = Extractor(Weather, model=ScriptedBackend())
    with_examples = Extractor(Weather, model=ScriptedBackend(), examples=[
        ("Is it raining in Lyon?", {"city": "Lyon", "state": None, "condition": "raining"})])
    assert 0 < with_examples.null_penalty < zero.null_penalty
    assert zero.min_confidence == 0 and with_examples.min_confidence > 0
    assert '"state": null' in with_examples.prompt("Snow in Utah?", many=False)


@pytest.mark.embedded
def test_a_field_the_text_does_not_state_comes_back_null_with_examples(embedded):
    examples = [("Is it raining in Lyon?", {"city": "Lyon", "state": None, "condition": "raining"}),
                ("Weather in Ohio tomorrow", {"city": None, "state": "Ohio", "condition": None}),
                ("Will it be sunny in Denver, Colorado?",
                 {"city": "Denver", "state": "Colorado", "condition": "sunny"})]
    shot = Extractor(Weather, model=embedded, examples=examples)
    assert shot.extract("Will there be fog in Boston?").model_dump() == {
        "city": "Boston", "state": None, "condition": "fog"}
    text = "I want to know if it will be hot in Miami"
    zero = Extractor(Weather, model=embedded).extract(text)
    assert shot.extract(text).model_dump() == {"city": "Miami", "state": None, "condition": "hot"}
    assert zero.condition != "hot"  # measured: zero-shot takes "I want to know if it will be"


@pytest.mark.embedded
def test_a_list_longer_than_five_comes_back_whole_when_the_examples_list_as_many(embedded):
    pairs = [("Cate Blanchett starred in Elizabeth, The Aviator, Carol, Blue Jasmine, Babel, "
              "Notes on a Scandal and Tar.",
              {"Actor": "Cate Blanchett", "Film": ["Elizabeth", "The Aviator", "Carol",
                                                   "Blue Jasmine", "Babel", "Notes on a Scandal",
                                                   "Tar"]}),
             ("Denzel Washington is known for Glory, Malcolm X, Training Day, Fences, Flight, "
              "Philadelphia and Inside Man.",
              {"Actor": "Denzel Washington", "Film": ["Glory", "Malcolm X", "Training Day",
                                                      "Fences", "Flight", "Philadelphia",
                                                      "Inside Man"]})]
    text = ("Keanu Reeves played in Speed, The Matrix, John Wick, Point Break, Constantine, "
            "The Devil's Advocate, Little Buddha and Johnny Mnemonic.")
    films = Extractor(Actor, model=embedded, examples=pairs).extract(text).Film
    assert len(films) > 5 and set(films) <= {
        "Speed", "The Matrix", "John Wick", "Point Break", "Constantine",
        "The Devil's Advocate", "Little Buddha", "Johnny Mnemonic"}
    # without examples the decoder's default bound holds
    assert len(Extractor(Actor, model=embedded).extract(text).Film) <= 5


def test_field_confidence_multiplies_the_chosen_tokens_inside_each_value():
    from simulacra.extract import field_confidence

    text = '{"city": "Paris", "state": null, "condition": "fog"}'
    at = text.index
    probs = [(at(' "Paris'), 0.9), (at("ris"), 0.5), (at(" null"), 0.8), (at(' "fog'), 0.6)]
    assert field_confidence(text, probs) == {"city": 0.45, "state": 0.8, "condition": 0.6}
    assert field_confidence("not json", probs) == {}


def scored(reply, probs):
    from simulacra.backends.base import Completion

    return Completion(text=reply, probs=[(reply.index(piece), p) for piece, p in probs])


def test_weak_values_are_nulled_and_the_surest_field_keeps_a_shared_span():
    reply = '{"city": "Tahquamenon Falls", "state": "Tahquamenon Falls", "condition": "mist"}'
    probs = [(' "Tahquamenon Falls", "state"', 0.3), (' "Tahquamenon Falls", "condition"', 0.9),
             (' "mist', 0.2)]
    rows = []
    x = Extractor(Weather, model=ScriptedBackend([scored(reply, probs)]), min_confidence=0.25)
    [outcome] = x.outcomes(["Will there be mist in Tahquamenon Falls?"], ledger=rows.append)
    # state was the surer of the two fields that state the span; mist was below 0.25 (a
    # condition the description named, "fog", would have stayed)
    assert outcome.data == {"city": None, "state": "Tahquamenon Falls", "condition": None}
    assert rows[0]["tries"][0]["confidence"] == {"city": 0.3, "state": 0.9, "condition": 0.2}


@pytest.mark.embedded
def test_the_ledger_holds_each_field_s_confidence_on_the_real_model(embedded):
    rows = []
    x = Extractor(Weather, model=embedded)
    [outcome] = x.outcomes(["Will there be mist in Boston?"], ledger=rows.append)
    confidence = rows[0]["tries"][-1]["confidence"]
    assert set(confidence) == {"city", "state", "condition"}
    assert all(0 < p <= 1 for p in confidence.values())
    strict = Extractor(Weather, model=embedded, min_confidence=1.0)
    kept = strict.extract("Will there be mist in Boston?").model_dump()
    # only values chosen with certainty (every token forced or p = 1) survive 1.0
    assert all(v is None or confidence[k] == 1.0 for k, v in kept.items())


def test_a_value_run_into_its_neighbour_loses_the_neighbour_unless_it_is_surer():
    from simulacra.extract import _span_once_fields

    class Purchase(BaseModel):
        product: str | None = None
        quantity: int | None = None

    shoes = {"product": "2 trail running shoes", "quantity": 2}
    fields = set(shoes)
    assert _span_once_fields(shoes, fields, fields, {"product": 0.18, "quantity": 0.9}) == {
        "product": "trail running shoes", "quantity": 2}
    # without confidences (an endpoint's reply) nothing says which value is right
    fake = ScriptedBackend([json.dumps(shoes)])
    got = Extractor(Purchase, model=fake).extract("Ordered 2 trail running shoes online.")
    assert got == Purchase(product="2 trail running shoes", quantity=2)
    flight = {"origin": "Canada", "airline": "Air Canada"}
    names = set(flight)
    sure_airline = _span_once_fields(flight, names, names, {"origin": 0.68, "airline": 0.95})
    assert sure_airline["airline"] == "Air Canada"
    sure_origin = _span_once_fields(flight, names, names, {"origin": 0.99, "airline": 0.5})
    assert sure_origin["airline"] == "Air"


class Rating(BaseModel):
    title: str | None = Field(None, description="the title of the work rated")
    series: str | None = Field(None, description="series, saga, chronicle")
    kind: str | None = Field(None, description="the kind of work: book, novel, essay")
    unit: str | None = Field(None, description="the unit of the rating")


def test_a_value_moves_to_the_empty_field_whose_description_or_examples_name_it():
    fake = ScriptedBackend(['{"title": null, "series": null, "kind": "saga", "unit": null}',
                            '{"title": null, "series": null, "kind": "novel", "unit": null}',
                            '{"title": "Dune", "series": null, "kind": null, "unit": null}'])
    extractor = Extractor(Rating, model=fake, examples=[
        ("Give Dune 4 points", {"title": "Dune", "series": None, "kind": None, "unit": "points"})])
    # "saga" is in the series description, not the kind's: it moves
    assert extractor.extract("Rate this saga 3").series == "saga"
    # "novel" is a kind the description names: it stays
    assert extractor.extract("Rate this novel 3").kind == "novel"
    # a phrase the text states that only one empty field knows fills it ("points" from the
    # example), and "essay", named by the kind, is taken from the text as written
    record = extractor.extract("Give Dune five points, an Essay")
    assert record.unit == "points" and record.kind == "Essay"


def test_a_stated_phrase_two_fields_know_fills_neither():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Music(BaseModel):
        genre: str | None = Field(None, description="a genre: rock, jazz")
        track: str | None = Field(None, description="the song, e.g. rock")
        artist: str | None = Field(None, description="the musician")

    lexicon = FieldLexicon(load_schema(Music), [])
    assert lexicon.fill({"genre": None, "track": None, "artist": None}, "play rock") == {
        "genre": None, "track": None, "artist": None}
    # a known phrase inside a value found is that value's word, not a second value
    assert lexicon.fill({"genre": None, "track": None, "artist": "Jazz Lab"},
                        "play Jazz Lab") == {"genre": None, "track": None, "artist": "Jazz Lab"}


def test_a_code_moves_to_the_field_whose_examples_are_codes_after_a_copy_is_resolved():
    # the decoder copies "PA" into city and state (state the surer) and "warm" into two fields
    reply = ('{"city": "PA", "state": "PA", "condition": "warm", "temperature": "warm"}')
    probs = [(' "PA", "state"', 0.9), (' "PA", "condition"', 0.7), (' "warm", "temp', 0.8),
             (' "warm"}', 0.6)]

    class Forecast(BaseModel):
        city: str | None = Field(None, description="the city")
        state: str | None = Field(None, description="the state")
        condition: str | None = Field(None, description="a condition: rain, fog")
        temperature: str | None = Field(None, description="a temperature word: hot, warm")

    examples = [("Rain in Lyon", {"city": "Lyon", "state": None, "condition": "Rain",
                                  "temperature": None}),
                ("Hot in FL?", {"city": None, "state": "FL", "condition": None,
                                "temperature": "Hot"})]
    x = Extractor(Forecast, model=ScriptedBackend([scored(reply, probs)]), examples=examples,
                  min_confidence=0)
    record = x.extract("Will it be warm in PA")
    # "PA" stays in state (surer, and a code like the state's examples); "warm" goes to the
    # field whose description names it although the decoder was surer of condition
    assert record.model_dump() == {"city": None, "state": "PA", "condition": None,
                                   "temperature": "warm"}
    assert x.lexicon.settle({"city": "NV", "state": None, "condition": None,
                             "temperature": None}, {})[0]["state"] == "NV"


def test_a_value_unlike_every_labelled_value_of_its_field_is_dropped():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Song(BaseModel):
        playlist: str | None = Field(None, description="the playlist")
        mood: str | None = Field(None, description="a feeling")

    lexicon = FieldLexicon(load_schema(Song), [
        ("put my raining playlist on", {"playlist": "raining", "mood": None}),
        ("add it to Chill Vibes", {"playlist": "Chill Vibes", "mood": None})])
    # a run-on span, and digits where the field's values never have one
    assert not lexicon.fits("playlist", "Let me listen to an eighties ep")
    assert not lexicon.fits("playlist", "1972")
    assert lexicon.fits("playlist", "Road Trip Songs") and lexicon.fits("mood", "1972")
    # no field speaks of a year or a number: the digits have no home and are dropped
    assert lexicon.settle({"playlist": "1972", "mood": None}, {})[0] == {"playlist": None,
                                                                      "mood": None}


def test_a_value_moves_to_the_field_the_text_names_beside_it():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Play(BaseModel):
        artist: str | None = Field(None, description="the musician")
        album: str | None = Field(None, description="the album")
        playlist: str | None = Field(None, description="a playlist")

    lexicon = FieldLexicon(load_schema(Play), [])
    moved, _ = lexicon.settle({"artist": "New World", "album": None, "playlist": None}, {},
                              "play the album New World by Coma")
    assert moved == {"artist": None, "album": "New World", "playlist": None}
    moved, _ = lexicon.settle({"artist": "Road Trip", "album": None, "playlist": None}, {},
                              "put my Road Trip playlist on")
    assert moved["playlist"] == "Road Trip"
    # a value the text names as what it is stays ("the artist Coma"), and so does one the
    # text names nothing beside
    for text in ("play the artist Coma album", "play Coma"):
        kept, _ = lexicon.settle({"artist": "Coma", "album": None, "playlist": None}, {}, text)
        assert kept["artist"] == "Coma"


def test_only_free_string_fields_take_or_lose_values_by_the_lexicon():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Order(BaseModel):
        item: str | None = Field(None, description="the product")
        quantity: int | None = Field(None, description="how many, e.g. 3")
        size: Literal["small", "large"] | None = Field(None, description="small, large")

    lexicon = FieldLexicon(load_schema(Order), [])
    record = {"item": None, "quantity": None, "size": None}
    # "3" and "large" are named by the descriptions, but a string in an integer or enum field
    # would not validate: the decoder's own typed choice stands
    assert lexicon.fill(record, "3 large mugs") == record
    assert set(lexicon.known) == {"item"}


def test_digits_without_a_home_by_kind_go_to_the_one_unlabelled_counted_field():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Song(BaseModel):
        track: str | None = Field(None, description="the song")
        sort: str | None = Field(None, description="newest, top")
        year: str | None = Field(None, description="a year or decade of the music")

    lexicon = FieldLexicon(load_schema(Song), [
        ("play Foreign Affair", {"track": "Foreign Affair", "sort": None, "year": None}),
        ("play the track Coma", {"track": "Coma", "sort": None, "year": None})])
    assert lexicon.numeric == ["year"]
    for field in ("track", "sort"):
        record = {"track": None, "sort": None, "year": None, field: "1991"}
        assert lexicon.settle(record, {})[0] == {"track": None, "sort": None, "year": "1991"}
    # a year already found keeps its place; the digits have no second home and are dropped
    # from a field whose labelled values never hold one
    settled = lexicon.settle({"track": "1991", "sort": None, "year": "1972"}, {})[0]
    assert settled == {"track": None, "sort": None, "year": "1972"}


def test_a_query_s_opening_words_are_no_value_unless_an_example_opens_with_one():
    from simulacra.extract import Carriers

    queries = [("Is Rented Lips playing at the nearest cinema", {"movie": "Rented Lips"}),
               ("Find the schedule for Grand Canyon Trail", {"movie": "Grand Canyon Trail"}),
               ("Where can I see Sweet 16", {"movie": "Sweet 16"}),
               ("give me the movie times", {"movie": None}),
               ("Is there a showing of Heat at Harkins", {"movie": "Heat"})]
    text = "What movies are playing at the closest cinema"
    offered = Carriers(queries).offered(["What movies are playing", "movies", "closest cinema"], text)
    assert offered == ["movies", "closest cinema"]
    # one example whose value opens its text, or too few examples to tell: every span stays
    opening = [*queries, ("Heat is on where", {"movie": "Heat"})]
    assert "What movies are playing" in Carriers(opening).offered(["What movies are playing"], text)
    assert "What movies are playing" in Carriers(queries[:2]).offered(
        ["What movies are playing"], text)


def test_a_value_widens_to_the_longer_value_the_user_gave_its_field():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Screening(BaseModel):
        object_type: str | None = Field(None, description="what is searched")
        rating: str | None = Field(None, description="e.g. 4 in '4 out of 6'")

    lexicon = FieldLexicon(load_schema(Screening), [
        ("Give me Pacific Theatres movie schedules", {"object_type": "movie schedules",
                                                      "rating": None})])
    assert lexicon.widen({"object_type": "schedules", "rating": None},
                         "Find Movie schedules for Bow Tie")["object_type"] == "Movie schedules"
    # not where the text states the head word alone, nor from a description's illustration
    assert lexicon.widen({"object_type": "schedules", "rating": "4"},
                         "Find the schedules, 4 out of 6") == {"object_type": "schedules",
                                                               "rating": "4"}


class Forecast(BaseModel):
    city: str | None = Field(None, description="the city the forecast is for")
    country: str | None = Field(None, description="the country")
    here: str | None = Field(None, description="where the user is now")
    when: str | None = Field(None, description="a date, a time, a day")


def test_a_time_value_widens_to_the_time_phrase_the_text_states():
    from simulacra.extract import FieldLexicon
    from simulacra.extract_cues import time_phrases
    from simulacra.schema import load_schema

    text = "Tell me the forecast for 1 month from now in Lyon, then for 3 years"
    assert time_phrases(text) == ("1 month from now", "3 years")
    assert time_phrases("Will it rain in 213 days?") == ("in 213 days",)
    # whole words of the text (dateparser stops at a period), one date in several parts
    assert time_phrases("movies at eleven A.M. at Santikos Theatres?") == ("eleven A.M.",)
    assert time_phrases("Weather in Carlock on nov. the 9th?") == ("nov. the 9th",)
    assert time_phrases("Snow here on January twenty-first, 2029?") == (
        "January twenty-first, 2029",)
    assert time_phrases("rain on monday and tuesday") == ("monday", "tuesday")
    lexicon = FieldLexicon(load_schema(Forecast), [])
    assert lexicon.temporal == {"when"}
    record = {"city": "Lyon", "country": None, "here": None, "when": "1 month"}
    assert lexicon.widen(record, text)["when"] == "1 month from now"
    # only a time field widens: "Lyon" in a city stays as the model chose it
    assert lexicon.widen({**record, "when": None, "city": "1 month"}, text)["city"] == "1 month"


def test_a_time_or_a_known_value_without_its_article_moves_to_its_field():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    lexicon = FieldLexicon(load_schema(Forecast), [
        ("Will it be hot at my current place", {"city": None, "country": None,
                                                "here": "current place", "when": None})])
    moved, _ = lexicon.settle({"city": None, "country": "one hour", "here": None, "when": None},
                              {}, "Will it be cold in Oslo in one hour?")
    assert moved == {"city": None, "country": None, "here": None, "when": "in one hour"}
    moved, _ = lexicon.settle({"city": None, "country": "the current place", "here": None,
                               "when": None}, {}, "Will it be hot in the current place?")
    assert moved["here"] == "current place" and moved["country"] is None
    # a time field already filled takes nothing more
    kept, _ = lexicon.settle({"city": None, "country": "one hour", "here": None, "when": "now"},
                             {}, "Is it cold now and in one hour?")
    assert kept["country"] == "one hour" and kept["when"] == "now"


def test_a_number_spelled_out_is_of_the_digits_kind():
    from simulacra.extract_cues import _shape

    for number in ("the thirties", "eighties", "twenty-first", "two hundred", "Seven"):
        assert _shape(number) == "digits", number
    for name in ("One Direction", "Fifth Harmony", "Frank", "this", "often", "cities", "one month"):
        assert _shape(name) is None, name


def test_lowercase_function_words_are_no_value_unless_the_field_knows_them():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    lexicon = FieldLexicon(load_schema(Forecast), [
        ("Is it cold here", {"city": None, "country": None, "here": "here", "when": None})])
    settled, _ = lexicon.settle({"city": "like", "country": "the", "here": "here",
                                 "when": "Out There"}, {})
    # "Out There" is written as a title: a name made of function words stays
    assert settled == {"city": None, "country": None, "here": "here", "when": "Out There"}


def test_another_form_of_a_word_a_field_knows_moves_to_that_field():
    """The description lists "newest"; the text says "new". A name that merely starts with
    the word ("Lastfm" for "last") is no form of it."""
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Play(BaseModel):
        playlist: str | None = Field(None, description="a playlist")
        sort: str | None = Field(None, description="an ordering such as newest, top")
        service: str | None = Field(None, description="the streaming service")

    lexicon = FieldLexicon(load_schema(Play), [("play it on Lastfm", {
        "playlist": None, "sort": None, "service": "Lastfm"})])
    settled, _ = lexicon.settle({"playlist": "new", "sort": None, "service": None}, {})
    assert settled == {"playlist": None, "sort": "new", "service": None}
    settled, _ = lexicon.settle({"playlist": "last", "sort": None, "service": None}, {})
    assert settled == {"playlist": "last", "sort": None, "service": None}


def test_a_value_is_a_whole_hyphenated_word_and_a_name_loses_whose_it_is():
    """"top" of "top-fifty" is the whole word (even where the field knows "top"), and the
    "fifty" in it is no year; "my Women of Rock" is the playlist "Women of Rock";
    "anything" is no value."""
    from simulacra.extract import FieldLexicon
    from simulacra.extract_cues import _loose_numbers
    from simulacra.schema import load_schema

    class Play(BaseModel):
        playlist: str | None = Field(None, description="a playlist")
        sort: str | None = Field(None, description="an ordering such as newest, top")
        year: str | None = Field(None, description="a year or decade")

    lexicon = FieldLexicon(load_schema(Play), [])
    text = "Open Lastfm and sort by the top-fifty"
    assert lexicon.widen({"playlist": None, "sort": "top", "year": None}, text)["sort"] == \
        "top-fifty"
    assert lexicon.fill({"playlist": None, "sort": None, "year": None}, text) == {
        "playlist": None, "sort": "top-fifty", "year": None}
    assert _loose_numbers("play the top-5 from the fifties") == ["fifties"]
    # a part with digits or a code is a value of its own
    assert lexicon.widen({"playlist": None, "sort": None, "year": "2024"},
                         "from 2024-05-01")["year"] == "2024"
    assert lexicon.widen({"playlist": "AA", "sort": None, "year": None},
                         "on flight AA-123")["playlist"] == "AA"
    assert lexicon.trim({"playlist": "my Women of Rock", "sort": None, "year": None}) == {
        "playlist": "Women of Rock", "sort": None, "year": None}
    settled, _ = lexicon.settle({"playlist": "anything", "sort": None, "year": None}, {})
    assert settled["playlist"] is None


def test_a_function_word_value_leaves_its_field_free_for_a_misfiled_name():
    """"Play my Romántica playlist": the small model files the name under the first field
    of names and "my" under playlist; "my" goes first, so the name can move to the field
    the text names beside it."""
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Play(BaseModel):
        artist: str | None = Field(None, description="the musician")
        playlist: str | None = Field(None, description="a playlist")

    lexicon = FieldLexicon(load_schema(Play), [])
    settled, _ = lexicon.settle({"artist": "Romántica", "playlist": "my"}, {},
                                "Play my Romántica playlist")
    assert settled == {"artist": None, "playlist": "Romántica"}


def test_a_name_is_no_value_of_a_field_of_common_words():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Play(BaseModel):
        track: str | None = Field(None, description="the song")
        music_item: str | None = Field(None, description="the kind: song, track, album")

    lexicon = FieldLexicon(load_schema(Play), [
        ("play the track Coma", {"track": "Coma", "music_item": "track"}),
        ("play an ep", {"track": None, "music_item": "ep"})])
    assert lexicon.common == {"music_item"}
    assert not lexicon.fits("music_item", "One Way Ticket")
    assert lexicon.fits("music_item", "soundtrack") and lexicon.fits("track", "Ray Kennedy")
    # a known kind written with a capital ("Play The Song X") stays
    assert lexicon.fits("music_item", "Song") and lexicon.fits("music_item", "Ep")


def test_a_value_inside_another_field_s_value_goes_unless_the_examples_nest_values():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Song(BaseModel):
        artist: str | None = Field(None, description="the musician")
        service: str | None = Field(None, description="the streaming service")
        select: str | None = Field(None, description="which one: this, the current")

    flat = [(f"play Band {i} on Vimeo", {"artist": f"Band {i}", "service": "Vimeo", "select": None})
            for i in range(5)]
    lexicon = FieldLexicon(load_schema(Song), flat)
    assert not lexicon.nesting
    record = {"artist": "Mark Knopfler", "service": "Knopfler", "select": None}
    confidence = {"artist": 0.9, "service": 0.8}
    assert lexicon.unnest(record, confidence) == {**record, "service": None}
    # the value its field knows stays, however sure the decoder was of the other
    assert lexicon.unnest({"artist": "the current", "service": None, "select": "this"},
                          {"artist": 0.9, "select": 0.2}) == {
        "artist": "the current", "service": None, "select": "this"}
    assert lexicon.unnest({"artist": "the current Mix", "service": None, "select": "the current"},
                          {"artist": 0.9, "select": 0.2})["artist"] is None
    # examples that nest values (a city inside an address), or too few to tell: both stay
    nested = [*flat, ("play Vimeo Mix on Vimeo", {"artist": "Vimeo Mix", "service": "Vimeo",
                                                  "select": None})]
    for examples in (nested, flat[:2]):
        assert FieldLexicon(load_schema(Song), examples).unnest(record, confidence) == record


def test_a_value_cut_from_a_longer_name_goes_unless_the_examples_cut_names():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Place(BaseModel):
        city: str | None = Field(None, description="a city")
        state: str | None = Field(None, description="a state")
        park: str | None = Field(None, description="a park or monument")

    whole = [(f"rain in Town {i} tomorrow", {"city": f"Town {i}", "state": None, "park": None})
             for i in range(5)]
    lexicon = FieldLexicon(load_schema(Place), whole)
    assert not lexicon.cut_names
    text = "weather at Navajo National Monument on fri."
    assert lexicon.whole_names({"city": None, "state": "Navajo", "park": None}, text)["state"] is None
    # a whole name stays, and so do two values side by side or a name beside a code
    assert lexicon.whole_names({"city": None, "state": None, "park": "Navajo National Monument"},
                               text)["park"] == "Navajo National Monument"
    assert lexicon.whole_names({"city": "Hillsview", "state": "MA", "park": None},
                               "weather in Hillsview MA") == {
        "city": "Hillsview", "state": "MA", "park": None}
    assert lexicon.whole_names({"city": "West Carson", "state": "Vatican", "park": None},
                               "is it foggy in Vatican West Carson")["state"] == "Vatican"
    # in a title-case text every word is capitalized: nothing to tell names by
    assert lexicon.whole_names({"city": None, "state": "Navajo", "park": None},
                               "Weather At Navajo National Monument")["state"] == "Navajo"
    # examples that cut a name, or too few to tell: the value stays
    cut = [*whole, ("rain in Paris Texas", {"city": "Paris", "state": None, "park": None})]
    for examples in (cut, whole[:2]):
        assert FieldLexicon(load_schema(Place), examples).whole_names(
            {"city": None, "state": "Navajo", "park": None}, text)["state"] == "Navajo"


def test_a_value_loses_the_articles_and_prepositions_it_runs_on_into():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Showing(BaseModel):
        movie: str | None = Field(None, description="the film")
        when: str | None = Field(None, description="the time")
        near: str | None = Field(None, description="how close")

    lexicon = FieldLexicon(load_schema(Showing), [])
    assert lexicon.trim({"movie": "The Pagans at", "when": "now at a", "near": None}) == {
        "movie": "The Pagans", "when": "now", "near": None}
    # a one-word value stays, and so does a field whose labelled values end so
    assert lexicon.trim({"movie": "the", "when": None, "near": None})["movie"] == "the"
    labelled = FieldLexicon(load_schema(Showing), [("is it close from here", {
        "movie": None, "when": None, "near": "close from"})])
    assert labelled.trim({"movie": None, "when": None, "near": "close to"})["near"] == "close to"


def test_a_value_loses_a_leading_preposition_or_its_field_s_own_name():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Song(BaseModel):
        year: str | None = Field(None, description="the year of the music")
        city: str | None = Field(None, description="a city")
        title: str | None = Field(None, description="the song")
        time_range: str | None = Field(None, description="when")

    lexicon = FieldLexicon(load_schema(Song), [])
    assert lexicon.trim({"year": "in 2004", "city": "city of Value", "title": "In The Disco",
                         "time_range": "in 3 days"}) == {
        "year": "2004", "city": "Value", "title": "In The Disco", "time_range": "in 3 days"}
    assert lexicon.trim({"year": "year 1961", "city": "city", "title": None,
                         "time_range": None}) == {
        "year": "1961", "city": "city", "title": None, "time_range": None}
    # unless the field's labelled values start so
    labelled = FieldLexicon(load_schema(Song), [("play it from 1990", {
        "year": "from 1990", "city": None, "title": None, "time_range": None})])
    assert labelled.trim({"year": "in 2004", "city": None, "title": None,
                          "time_range": None})["year"] == "in 2004"


def test_the_empty_number_field_takes_the_one_number_the_text_states_on_its_own():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    class Song(BaseModel):
        artist: str | None = Field(None, description="the musician")
        year: str | None = Field(None, description="a year or decade of the music")

    # examples that never label a year still leave it the field for numbers
    lexicon = FieldLexicon(load_schema(Song), [("play Muse", {"artist": "Muse", "year": None})])
    fill = lexicon.fill
    assert fill({"artist": "Mike Muir", "year": None},
                "play anything Mike Muir made in the thirties")["year"] == "thirties"
    assert fill({"artist": None, "year": None}, "Put any 1972 record on.")["year"] == "1972"
    # not a number in a name, one that counts, one of a longer time, or one of two
    for text in ("Play One Way Ticket by Ray Kennedy", "play two songs by Muse",
                 "play Film 1 by Muse", "play jazz at 2 p.m.", "play music from 1951 or 1952",
                 "play the first song by Muse", "play the twentieth song by Muse"):
        assert fill({"artist": None, "year": None}, text)["year"] is None, text
    # nor the number a value holds
    assert fill({"artist": "Blink 182", "year": None}, "play Blink 182")["year"] is None


def test_the_empty_time_field_takes_the_one_time_phrase_the_text_states():
    from simulacra.extract import FieldLexicon
    from simulacra.schema import load_schema

    lexicon = FieldLexicon(load_schema(Forecast), [])
    empty = {"city": None, "country": None, "here": None, "when": None}
    assert lexicon.fill({**empty, "city": "Oslo"}, "Will it snow in Oslo this week?")["when"] \
        == "this week"
    # a time inside a value found ("Four Days in November") is that value's
    assert lexicon.fill({**empty, "city": "Four Days in November"},
                        "Is Four Days in November playing")["when"] is None


WEATHER_PAIRS = [("Is it raining in Lyon?", {"city": "Lyon", "state": None, "condition": "raining"}),
                 ("Weather in Ohio tomorrow", {"city": None, "state": "Ohio", "condition": None}),
                 ("Will it be sunny in Denver, Colorado?",
                  {"city": "Denver", "state": "Colorado", "condition": "sunny"}),
                 ("Any snow in Maine?", {"city": None, "state": "Maine", "condition": "snow"})]


def test_a_value_the_second_reading_does_not_state_alike_is_dropped():
    fake = ScriptedBackend([
        '{"city": "Salem", "state": "Oregon", "condition": null}',    # first reading
        '{"city": "salem", "state": null, "condition": null}',        # second reading
    ])
    rows = []
    x = Extractor(Weather, model=fake, examples=WEATHER_PAIRS, cross_check=True)
    [outcome] = x.outcomes(["Is Salem in Oregon cold?"], ledger=rows.append)
    assert outcome.data == {"city": "Salem", "state": None, "condition": None}
    assert rows[0]["dropped"] == ["state"]
    assert rows[0]["second_reading"] == {"city": "salem", "state": None, "condition": None}
    # the second reading showed the same examples, the second half of them first
    first, second = (r.prompt for r in fake.history)
    assert first.index("Lyon") < first.index("Maine") and second.index("Maine") < second.index("Lyon")
    assert x.stats.attempts == 2 and x.stats.requested == 1


def test_cross_check_is_on_with_examples_on_the_embedded_model_only():
    grammar = ScriptedBackend(capabilities=Capabilities(grammar=True, batch=4))
    assert Extractor(Weather, model=grammar, examples=WEATHER_PAIRS)._cross_checks(False)
    assert not Extractor(Weather, model=grammar)._cross_checks(False)            # zero-shot
    assert not Extractor(Weather, model=grammar, examples=WEATHER_PAIRS)._cross_checks(True)
    endpoint = ScriptedBackend()
    assert not Extractor(Weather, model=endpoint, examples=WEATHER_PAIRS)._cross_checks(False)
    fake = ScriptedBackend(['{"city": "Salem", "state": "Oregon", "condition": null}'])
    x = Extractor(Weather, model=fake, examples=WEATHER_PAIRS, cross_check=False)
    assert x.extract("Is Salem in Oregon cold?").state == "Oregon" and len(fake.history) == 1


class Cast(BaseModel):
    Actor: str
    Film: list[str] | None = None
    Role: str | None = None


def test_readings_agree_on_common_list_items_and_a_required_value_stands():
    from simulacra.extract import FieldLexicon, agreed_fields
    from simulacra.schema import load_schema

    unlabelled = FieldLexicon(load_schema(Cast), [])
    first = {"Actor": "Tom Hanks", "Film": ["Big", "Splash", "Cast Away"], "Role": "lead"}
    second = {"Actor": "Hanks", "Film": ["cast away", "Big"], "Role": None}
    assert agreed_fields(unlabelled, first, second) == (
        {"Actor": "Tom Hanks", "Film": ["Big", "Cast Away"], "Role": None}, ["Film", "Role"])
    assert agreed_fields(unlabelled, first, first) == (first, [])
    # a value the field knows (its description or examples name it) stands
    labelled = FieldLexicon(load_schema(Cast), [("Meg Ryan, the lead of Sleepless.", {
        "Actor": "Meg Ryan", "Film": ["Sleepless"], "Role": "lead"})])
    assert labelled.knows("Role", "lead")
    assert agreed_fields(labelled, first, second)[0]["Role"] == "lead"


def test_a_failed_second_reading_leaves_the_first_standing():
    fake = ScriptedBackend(['{"city": "Salem", "state": "Oregon", "condition": null}', "no JSON"])
    rows = []
    x = Extractor(Weather, model=fake, examples=WEATHER_PAIRS, cross_check=True)
    [outcome] = x.outcomes(["Is Salem in Oregon cold?"], ledger=rows.append)
    assert outcome.data["state"] == "Oregon" and rows[0]["second_reading"] is None


@pytest.mark.embedded
def test_the_cross_check_keeps_only_values_of_the_first_reading_on_the_real_model(embedded):
    texts = ["Will there be fog in Boston?", "Is it windy in Reno, Nevada today?",
             "Snow in Vermont?"]
    single = Extractor(Weather, model=embedded, examples=WEATHER_PAIRS, cross_check=False)
    once = [single.extract(t).model_dump() for t in texts]
    rows = []
    checked = Extractor(Weather, model=embedded, examples=WEATHER_PAIRS)   # on by default
    twice = {o.index: o.data for o in checked.outcomes(texts, ledger=rows.append)}
    for first, kept, row in zip(once, [twice[i] for i in range(len(texts))],
                                sorted(rows, key=lambda r: r["index"]), strict=True):
        assert row["second_reading"] is not None
        assert all(v is None or v == first[k] for k, v in kept.items())
        assert {k for k, v in first.items() if v != kept[k]} == set(row["dropped"])
    assert checked.stats.attempts >= 2 * len(texts)

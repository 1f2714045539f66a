"""The decoder's side of the diversity steer, on a toy vocabulary: what the cursor tracks,
how candidates are penalized, and that a numeric bound holds whatever the model prefers."""

import math

import numpy as np
import pytest

from simulacra.backends._steer import JsonCursor, steer_logits
from simulacra.checks.rules import parse_rules
from simulacra.engine.diversity import build_steer

NAMES = {"name": {"type": "string"}, "sex": {"enum": ["female", "male"]}}


def steer_for(properties, diversity=1.0, rules=()):
    schema = {"type": "object", "properties": properties}
    return build_steer(schema, diversity, rules=parse_rules(list(rules)))


def test_the_cursor_follows_paths_through_nested_objects_and_arrays():
    steer = steer_for({"a": {"type": "object", "properties": {"b": {"type": "string"}}},
                       "c": {"type": "array", "items": {"type": "number"}}})
    cursor = JsonCursor(steer)
    cursor.feed(b'{"a": {"b": "x')
    assert cursor.value_state() == (("a", "b"), b"x", "string")
    cursor.feed(b'y\\"z"}, "c": [')
    assert cursor.value_state() == (("c", "[]"), b"", "open")
    cursor.feed(b"12, 3")
    assert cursor.value_state() == (("c", "[]"), b"3", "number")
    cursor.feed(b"]}")
    assert steer.fields[("a", "b")].count(b'xy\\"z"') == 1
    assert steer.fields[("c", "[]")].count(b'12"') == 1
    assert steer.fields[("c", "[]")].count(b'3"') == 1


def test_in_a_row_the_cursor_names_each_position_after_its_field():
    steer = steer_for({"name": {"type": "string"}, "tags": {"type": "array",
                                                             "items": {"type": "string"}}})
    cursor = JsonCursor(steer, row=("name", "tags"))
    cursor.feed(b'["Ada')
    assert cursor.value_state() == (("name",), b"Ada", "string")
    cursor.feed(b'", ["x", "y')
    assert cursor.value_state() == (("tags", "[]"), b"y", "string")
    cursor.feed(b'"]]')
    assert steer.fields[("name",)].count(b'Ada"') == 1


def test_a_cursor_that_does_not_count_reads_the_steer_but_leaves_it_as_it_was():
    steer = build_steer({"type": "object", "properties": REVIEWER | {"title": {"type": "string"}}},
                        1.0, examples=[{"title": "Fine", "reviewer": "Marta"}])
    def snapshot():
        return {path: (dict(c.whole), c.values, c.nulls) for path, c in steer.fields.items()}

    before = snapshot()
    quiet = JsonCursor(steer, counting=False)
    quiet.feed(b'{"title": "Fin')
    assert quiet.margin() > 0                       # the examples' "Fine" is still pressed
    quiet.feed(b'e", "reviewer": null}')            # a value, a null, and a field left out
    JsonCursor(steer, counting=False).feed(b'{"title": "Bad"}')
    assert snapshot() == before
    JsonCursor(steer).feed(b'{"title": "Bad"}')     # a counting cursor does count
    assert steer.fields[("title",)].count(b'Bad"') == 1


def test_keys_are_not_values():
    cursor = JsonCursor(steer_for(NAMES))
    cursor.feed(b'{"na')
    assert cursor.value_state() is None


PIECES = [b'"John', b'"Mary', b'"Ann', b'"Zoe', b'"Eve', b'"', b' Doe', b'"}']


def _draw(steer, rng, favourite=3.0):
    """One record {"name": ...} from a toy model that strongly prefers "John"."""
    cursor = JsonCursor(steer)
    cursor.feed(b'{"name": ')
    ids = np.arange(5)
    logits = np.array([favourite, 0, 0, 0, 0], dtype=np.float32)
    logits = steer_logits(cursor, logits, ids, PIECES, window=3.0)
    probs = np.exp(logits - logits.max())
    choice = int(rng.choice(5, p=probs / probs.sum()))
    cursor.feed(PIECES[choice] + b'"}')
    return PIECES[choice][1:].decode()


def test_the_steer_lowers_the_favourite_s_share():
    rng = np.random.default_rng(0)
    plain = [_draw(steer_for(NAMES, diversity=0.001), rng) for _ in range(300)]
    steer = steer_for(NAMES)
    steered = [_draw(steer, rng) for _ in range(300)]
    assert plain.count("John") / 300 > 0.7
    assert steered.count("John") / 300 < 0.4
    assert len(set(steered)) == 5


def steered_after(made: bytes, written: bytes, logits, choices, pieces):
    """The steered logits of `choices` for a record that has written `written` so far, in a
    run that has already made the record `made`."""
    steer = steer_for(NAMES)
    JsonCursor(steer).feed(made)
    cursor = JsonCursor(steer)
    cursor.feed(written)
    return steer_logits(cursor, logits, np.asarray(choices), pieces, window=3.0)


def test_enum_fields_are_left_alone():
    logits = np.array([2.0, 1.0], dtype=np.float32)
    out = steered_after(b'{"sex": "female", "name": "Ann"}', b'{"sex": ', logits, [0, 1],
                        [b'"female', b'"male'])
    assert np.array_equal(out, logits)


def test_opening_a_string_and_unseen_values_cost_nothing():
    out = steered_after(b'{"name": "John Doe"}', b'{"name": ', np.zeros(3, np.float32),
                        [5, 0, 1], PIECES)
    assert out[0] == 0 and out[2] == 0 and out[1] < 0   # '"', '"John', '"Mary'


def test_ending_on_a_value_already_made_is_penalized():
    out = steered_after(b'{"name": "John"}', b'{"name": "John', np.zeros(2, np.float32),
                        [7, 6], PIECES)
    assert out[0] < 0 and out[1] == 0          # '"}' repeats "John"; ' Doe' makes a new name


REVIEWER = {"reviewer": {"anyOf": [{"type": "string"}, {"type": "null"}]}}


def test_a_null_costs_its_share_above_the_examples_share():
    steer = build_steer({"type": "object", "properties": REVIEWER}, 1.0,
                        examples=[{"reviewer": "Marta"}, {"reviewer": None}])
    pieces = [b"null", b'"Ann', b'"Marta']
    logits = np.zeros(3, np.float32)

    def steered():
        cursor = JsonCursor(steer)
        cursor.feed(b'{"reviewer": ')
        return steer_logits(cursor, logits, np.arange(3), pieces, window=3.0)

    out = steered()
    assert out[0] == 0 and out[1] == 0 and out[2] < 0   # at the examples' rate a null is free
    for _ in range(6):
        JsonCursor(steer).feed(b'{"reviewer": null}')   # the cursor counts each null once
    counts = steer.fields[("reviewer",)]
    assert counts.nulls == 4 + 6
    out = steered()
    assert out[0] == pytest.approx(-steer.strength * (10 / 14 - 1 / 2))
    assert out[1] == 0


def test_leaving_a_field_out_is_a_null_and_costs_like_one():
    properties = {"title": {"type": "string"}, **REVIEWER}
    steer = build_steer({"type": "object", "properties": properties}, 1.0,
                        examples=[{"title": "Fine", "reviewer": "Marta"}, {"title": "Bad"}])
    counts = steer.fields[("reviewer",)]
    assert (counts.shown, counts.shown_nulls, counts.nulls) == (2, 1, 4)   # left out: null
    pieces = [b'"}', b'",', b'"', b"}", b","]
    cursor = JsonCursor(steer)
    cursor.feed(b'{"title": "Go')
    assert cursor.closing_cost() == 0        # at the examples' rate
    for title in [b"A", b"B", b"C", b"D"]:
        JsonCursor(steer).feed(b'{"title": "' + title + b'"}')
    assert counts.nulls == 8
    cost = steer.strength * (8 / 12 - 1 / 2)
    assert cursor.closing_cost() == pytest.approx(cost)
    out = steer_logits(cursor, np.zeros(3, np.float32), np.arange(3), pieces, window=3.0)
    assert out[0] == pytest.approx(-cost) and out[1] == 0 and out[2] == 0
    cursor.feed(b'"')                        # the title is done: a bare '}' costs the same
    out = steer_logits(cursor, np.zeros(2, np.float32), np.array([3, 4]), pieces, window=3.0)
    assert out[0] == pytest.approx(-cost) and out[1] == 0
    cursor.feed(b', "reviewer": "Kwame"')
    assert cursor.closing_cost() == 0        # written: closing leaves nothing out
    cursor.feed(b"}")
    assert counts.nulls == 8


DIGITS = [str(d).encode() for d in range(10)] + [b"12", b"50", b"99", b"999", b".", b",", b"}",
                                                 b"7}"]


def test_a_decoding_time_bound_never_produces_a_violation():
    steer = steer_for({"total": {"type": "number"}, "claim": {"type": "number"}}, diversity=0,
                      rules=["claim <= total"])
    rng = np.random.default_rng(1)
    for _ in range(300):
        total = int(rng.integers(1, 2000))
        cursor = JsonCursor(steer)
        cursor.feed(f'{{"total": {total}, "claim": '.encode())
        text = b""
        while True:
            allowed = [i for i, p in enumerate(DIGITS) if p[:1].isdigit() or text and
                       (p != b"." or b"." not in text)]
            logits = rng.normal(0, 3, len(allowed)).astype(np.float32)
            logits[[DIGITS[i] == b"999" for i in allowed]] += 5   # a model that loves big numbers
            out = steer_logits(cursor, logits, np.array(allowed), DIGITS, window=3.0)
            assert np.isfinite(out).any()
            piece = DIGITS[allowed[int(np.argmax(out))]]
            cursor.feed(piece)
            text += piece
            if not piece[-1:].isdigit() or len(text) > 12:
                break
        claim = float(text.rstrip(b",}"))
        assert claim <= total, (total, text)
        assert math.isfinite(claim)


def test_candidates_come_best_first_whether_or_not_the_tail_is_sorted_late():
    from simulacra.backends._steer import _best_first

    rng = np.random.default_rng(0)
    for size in (5, 64, 65, 3000):
        logits = rng.normal(size=4000).astype(np.float32)
        candidates = rng.choice(4000, size=size, replace=False)
        order = list(_best_first(logits, candidates))
        assert sorted(order) == sorted(candidates)
        assert np.all(np.diff(logits[order]) <= 0)


def test_a_token_closes_the_object_only_after_the_value_it_continues_ends():
    from simulacra.backends._steer import _closes

    assert _closes(b'"}', "string") and _closes(b'" }', "string") and _closes(b"}", None)
    assert _closes(b"5}", "number") and _closes(b"}", "number")
    assert not _closes(b'\\"}', "string")    # an escaped quote: the string goes on
    assert not _closes(b"}", "string") and not _closes(b'",', "string")
    assert not _closes(b"}", "open")

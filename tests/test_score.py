"""Field matching used by the extraction and round-trip benchmarks, on hand-made cases."""

from simulacra.score import normalize_text, prf, slot_counts, values_match


def test_text_matching_ignores_case_punctuation_and_spacing_only():
    assert values_match("  The Green-Mile ", "the green mile")
    assert values_match("\u201cForrest Gump\u201d", "Forrest Gump")
    assert not values_match("Green Mile", "The Green Mile")
    assert normalize_text("Mad Max: Fury Road") == "mad max fury road"


def test_numbers_match_within_tolerance_and_from_text():
    assert values_match(100.4, 100.0, rel_tol=0.005)
    assert not values_match(101, 100.0, rel_tol=0.005)
    assert values_match("1,250", 1250)
    assert not values_match(True, 1)


def test_slot_counts_and_prf():
    gold = {"a": "x", "b": "y", "c": None}
    assert slot_counts({"a": "X", "b": None, "c": "z"}, gold) == (1, 2, 2)
    assert slot_counts(None, gold) == (0, 0, 2)
    assert prf(1, 2, 2) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert prf(0, 0, 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_compare_field_pins_each_case():
    from simulacra.score import compare_field, failure_reason, flatten

    films = ["Forrest Gump", "Big", "Cast Away"]
    wrong = compare_field(["Forrest Gump", "Jaws", "Cast Away"], films)  # a wrong film
    assert (wrong["set_precision"], wrong["set_recall"]) == (0.667, 0.667) and not wrong["match"]
    missing = compare_field(["Forrest Gump", "Big"], films)  # a missing film
    assert (missing["set_precision"], missing["set_recall"]) == (1.0, 0.667)
    reordered = compare_field(["Big", "Forrest Gump", "Cast Away"], films)  # reordered list
    assert reordered["set_f1"] == 1.0 and not reordered["ordered"] and not reordered["exact"]
    off = compare_field(502.5, 500.0)  # off by 0.5%: within the 1% tolerance, not exact
    assert off["match"] and not off["exact"]
    assert not compare_field(510.0, 500.0)["match"]
    case = compare_field("tom hanks", "Tom Hanks")  # a case difference
    assert case["match"] and not case["exact"]
    assert failure_reason(None, "Tom", compare_field(None, "Tom")) == "missing"
    assert failure_reason("Tim", "Tom", compare_field("Tim", "Tom")) == "wrong value"
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": [1]}) == {"a.b": 1, "a.c.d": 2, "e": [1]}

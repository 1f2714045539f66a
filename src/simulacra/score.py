"""Comparing extracted values with gold ones: the field-level matching used by the benchmarks.

    values_match("  The Green-Mile ", "the green mile")   -> True   (case, spacing, punctuation)
    values_match(100.4, 100.0, rel_tol=0.005)              -> True
    slot_counts({"a": "x", "b": None}, {"a": "X", "b": "y"}) -> (1, 1, 2)  # correct, predicted, gold
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalize_text(value: str) -> str:
    """Case, accents kept; punctuation (quotes, dashes, dots) and spacing dropped."""
    text = unicodedata.normalize("NFKC", value).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def values_match(pred: Any, gold: Any, *, rel_tol: float = 1e-6) -> bool:
    if pred is None or gold is None:
        return pred is None and gold is None
    if isinstance(gold, bool) or isinstance(pred, bool):
        return pred is gold
    if isinstance(gold, int | float) and isinstance(pred, int | float):
        return math.isclose(float(pred), float(gold), rel_tol=rel_tol, abs_tol=1e-9)
    if isinstance(gold, int | float) and isinstance(pred, str):
        try:
            return values_match(float(pred.replace(",", "")), gold, rel_tol=rel_tol)
        except ValueError:
            return False
    return normalize_text(str(pred)) == normalize_text(str(gold))


def slot_counts(pred: dict[str, Any] | None, gold: dict[str, Any]) -> tuple[int, int, int]:
    """(correct, predicted, gold) over the non-null slots of one record."""
    pred = pred or {}
    predicted = sum(1 for v in pred.values() if v not in (None, "", []))
    wanted = sum(1 for v in gold.values() if v not in (None, "", []))
    correct = sum(1 for k, v in gold.items()
                  if v not in (None, "", []) and values_match(pred.get(k), v))
    return correct, predicted, wanted


def prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3)}


NUMERIC_TOLERANCE = 0.01  # relative: 100.4 matches 100, 101.5 does not


def compare_field(pred: Any, gold: Any, *, rel_tol: float = NUMERIC_TOLERANCE) -> dict[str, Any]:
    """Every metric that applies to one field's value, chosen by the gold value's type."""
    if isinstance(gold, list):
        pred_list = pred if isinstance(pred, list) else []
        gold_set = {normalize_text(str(g)) for g in gold}
        pred_set = {normalize_text(str(p)) for p in pred_list}
        hits = len(gold_set & pred_set)
        scores = prf(hits, len(pred_set), len(gold_set))
        ordered = len(pred_list) == len(gold) and all(
            values_match(p, g) for p, g in zip(pred_list, gold, strict=False))
        return {"kind": "list", "exact": pred == gold, "match": ordered, "ordered": ordered,
                "set_precision": scores["precision"], "set_recall": scores["recall"],
                "set_f1": scores["f1"] if gold_set or pred_set else 1.0}
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        return {"kind": "number", "exact": pred == gold,
                "match": values_match(pred, gold, rel_tol=rel_tol)}
    if isinstance(gold, str):
        return {"kind": "string", "exact": pred == gold, "match": values_match(pred, gold)}
    return {"kind": "other", "exact": pred == gold, "match": pred == gold}


def flatten(record: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted paths (`address.city`), so each is scored as its own field."""
    out: dict[str, Any] = {}
    for key, value in (record or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def failure_reason(pred: Any, gold: Any, result: dict[str, Any]) -> str | None:
    """Why a field did not match: missing (no value) or wrong (another value); None if it did."""
    if result["match"]:
        return None
    return "missing" if pred in (None, "", []) else "wrong value"

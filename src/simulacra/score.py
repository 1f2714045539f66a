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

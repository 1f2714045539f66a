"""Near-duplicates and leakage by fuzzy matching of records' text fields (rapidfuzz).

A record's *signature* is its string values joined in field order, lower-cased; two records
are near-duplicates when their signatures' similarity (rapidfuzz's `ratio`, 0-100) reaches
the threshold. The same measure against the few-shot examples and seed rows is leakage.
Each new record is compared with every earlier one (rapidfuzz's C loop makes that fast for
runs of tens of thousands; beyond that, shard the run).
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz, process

DEFAULT_THRESHOLD = 90.0


def text_signature(record: dict[str, Any]) -> str:
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            parts.append(value.lower())

    walk(record)
    return " | ".join(parts)


class NearDuplicates:
    """Remembers signatures; `closest` gives the best match and its score (0-100)."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self.signatures: list[str] = []

    def closest(self, record: dict[str, Any]) -> tuple[float, int | None]:
        signature = text_signature(record)
        if not signature or not self.signatures:
            return 0.0, None
        found = process.extractOne(signature, self.signatures, scorer=fuzz.ratio)
        return (float(found[1]), found[2]) if found else (0.0, None)

    def is_near(self, record: dict[str, Any]) -> bool:
        return self.closest(record)[0] >= self.threshold

    def add(self, record: dict[str, Any]) -> None:
        signature = text_signature(record)
        if signature:
            self.signatures.append(signature)

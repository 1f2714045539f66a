"""The gate every valid record passes before it is kept: rules, leakage, duplicates.

    gate = RecordGate(rules, examples=plan.examples, near_threshold=90)
    reason = gate.reject_reason(record)   # None, or "rule: ...", "leak: ...", "duplicate: ..."
    gate.admit(record)                    # remember it for later duplicate checks
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from simulacra.checks.dedup import NearDuplicates
from simulacra.checks.rules import Rule


def canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def fingerprint(data: dict[str, Any]) -> bytes:
    """16 bytes standing for a record in the duplicate set (a string would cost ~10x more)."""
    return hashlib.blake2b(canonical(data).encode(), digest_size=16).digest()


class RecordGate:
    """Rejects records that break a rule, copy (or nearly copy) an example or private row, or
    repeat (or nearly repeat) a record already kept. `near_threshold=None` checks exact only."""

    def __init__(self, rules: list[Rule] = (), *, examples: list[dict[str, Any]] = (),
                 private_rows: list[dict[str, Any]] = (), near_threshold: float | None = None) -> None:
        self.rules = list(rules)
        self.near_threshold = near_threshold
        self.references = list(examples) + list(private_rows)
        self._reference_keys = {canonical(r) for r in self.references}
        self._references = NearDuplicates(near_threshold or 101)
        for row in self.references:
            self._references.add(row)
        self._seen: set[bytes] = set()
        self._near = NearDuplicates(near_threshold) if near_threshold else None
        self.closest_leak = 0.0  # highest similarity (0-100) of a kept record to a reference

    def reject_reason(self, record: dict[str, Any]) -> str | None:
        for rule in self.rules:
            if not rule.holds(record):
                return f"rule: {rule.text} is false"
        key = canonical(record)
        if key in self._reference_keys:
            return "leak: the record copies a few-shot example or private row"
        digest = fingerprint(record)
        score, _ = self._references.closest(record)
        if self.near_threshold and score >= self.near_threshold:
            return f"leak: {score:.0f}% similar to a few-shot example or private row"
        if digest in self._seen:
            return "duplicate: the record equals one already made"
        if self._near is not None:
            near, _ = self._near.closest(record)
            if near >= self._near.threshold:
                return f"near-duplicate: {near:.0f}% similar to a record already made"
        return None

    def admit(self, record: dict[str, Any]) -> None:
        self._seen.add(fingerprint(record))
        if self._near is not None:
            self._near.add(record)
        score, _ = self._references.closest(record)
        self.closest_leak = max(self.closest_leak, score)

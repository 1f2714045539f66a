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


def canonical(data: Any) -> str:
    """A record's identity, the one the gate, the quality report and Ray's cross-shard dedup
    share: key order ignored, 1.0 the same as 1 (a Parquet reader may type a column as
    float), array-likes read back as lists."""
    return json.dumps(_plain(data), sort_keys=True, default=str, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def fingerprint(data: Any) -> bytes:
    """16 bytes standing for a record in the duplicate set (a string would cost ~10x more)."""
    return hashlib.blake2b(canonical(data).encode(), digest_size=16).digest()


def record_key(record: Any) -> str:
    """`fingerprint` as text (Ray keeps it in a column)."""
    return fingerprint(record).hex()


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

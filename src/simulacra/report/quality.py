"""Quality of a data set: validity, duplicates, per-field diversity, leakage, rule violations.

`QualityReport.add(record)` takes records one by one (the generator feeds it as it writes),
and `summary()` / `as_dict()` / `render()` report on them:

    simulacra report data.jsonl --schema examples/medical_billing.py:MedicalBilling
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from simulacra.checks.dedup import DEFAULT_THRESHOLD, NearDuplicates
from simulacra.checks.gate import canonical
from simulacra.checks.rules import Rule
from simulacra.schema import RecordInvalid, Schema
from simulacra.score import flatten

CATEGORY_LIMIT = 30  # a field with at most this many distinct values is charted as categories


def entropy(counter: Counter) -> float:
    total = sum(counter.values())
    return -sum(c / total * math.log2(c / total) for c in counter.values()) if total else 0.0


class QualityReport:
    def __init__(self, schema: Schema, *, examples: list[dict[str, Any]] = (),
                 rules: list[Rule] = (), near_threshold: float = DEFAULT_THRESHOLD) -> None:
        self.schema = schema
        self.rules = list(rules)
        self.rows = 0
        self.valid = 0
        self.invalid: Counter = Counter()
        self.exact_duplicates = 0
        self.near_duplicates = 0
        self.violations: Counter = Counter()
        self.leaks_exact = 0
        self.leaks_near = 0
        self.closest_leak = 0.0
        self.values: dict[str, Counter] = {}
        self._seen: set[str] = set()
        self._near = NearDuplicates(near_threshold)
        self._examples = NearDuplicates(near_threshold)
        examples = [self._normalized(e) for e in examples]
        self._example_keys = {canonical(e) for e in examples}
        for example in examples:
            self._examples.add(example)

    def _normalized(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row as the schema dumps it (500 -> 500.0 for a float), so equal records compare equal."""
        try:
            return self.schema.dump(self.schema.validate(row))
        except RecordInvalid:
            return row

    def add(self, row: Any) -> None:
        self.rows += 1
        try:
            record = self.schema.dump(self.schema.validate(row))
        except RecordInvalid as exc:
            self.invalid[exc.errors[0].split(":")[0]] += 1
            return
        self.valid += 1
        key = canonical(record)
        if key in self._seen:
            self.exact_duplicates += 1
        elif self._near.is_near(record):
            self.near_duplicates += 1
        self._seen.add(key)
        self._near.add(record)
        if key in self._example_keys:
            self.leaks_exact += 1
        score, _ = self._examples.closest(record)
        self.closest_leak = max(self.closest_leak, score)
        if key not in self._example_keys and score >= self._examples.threshold:
            self.leaks_near += 1
        for rule in self.rules:
            if not rule.holds(record):
                self.violations[rule.text] += 1
        for name, value in flatten(record).items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value
            self.values.setdefault(name, Counter())[shown] += 1

    def field_stats(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, counter in self.values.items():
            numbers = [v for v in counter.elements() if isinstance(v, int | float)
                       and not isinstance(v, bool)]
            stats: dict[str, Any] = {"distinct": len(counter), "entropy_bits": round(entropy(counter), 3),
                                     "top": ", ".join(f"{v} ({c})" for v, c in counter.most_common(5))}
            if numbers and len(numbers) == sum(counter.values()):
                mean = sum(numbers) / len(numbers)
                stats.update(min=min(numbers), max=max(numbers), mean=round(mean, 3))
            out[name] = stats
        return out

    def as_dict(self) -> dict[str, Any]:
        valid = self.valid or 1
        return {
            "schema": self.schema.name, "rows": self.rows, "valid": self.valid,
            "valid_rate": round(self.valid / self.rows, 3) if self.rows else 0.0,
            "invalid_by_field": dict(self.invalid),
            "exact_duplicate_rate": round(self.exact_duplicates / valid, 3),
            "near_duplicate_rate": round(self.near_duplicates / valid, 3),
            "leaked_examples": self.leaks_exact, "near_leaks": self.leaks_near,
            "closest_leak_similarity": round(self.closest_leak, 1),
            "rule_violations": {r.text: self.violations.get(r.text, 0) for r in self.rules},
            "fields": self.field_stats(),
        }

    def summary(self) -> str:
        d = self.as_dict()
        distinct = ", ".join(f"{k} {v['distinct']}" for k, v in d["fields"].items())
        rules = ", ".join(f"{k}: {v}" for k, v in d["rule_violations"].items()) or "none given"
        return (f"quality: {d['valid']}/{d['rows']} valid · exact duplicates "
                f"{d['exact_duplicate_rate']:.0%} · near duplicates {d['near_duplicate_rate']:.0%} · "
                f"copies of examples {d['leaked_examples']} (closest {d['closest_leak_similarity']}% "
                f"similar) · rule violations: {rules} · distinct values: {distinct}")

    def render(self, extra_sections: list[tuple[str, Any]] = ()) -> str:
        import plotly.graph_objects as go

        from simulacra.report.html import page, table

        d = self.as_dict()
        overview = table(["measure", "value"], [
            ["rows", d["rows"]], ["valid", f"{d['valid']} ({d['valid_rate']:.0%})"],
            ["exact duplicates", f"{d['exact_duplicate_rate']:.1%}"],
            ["near duplicates", f"{d['near_duplicate_rate']:.1%}"],
            ["records equal to an example", d["leaked_examples"]],
            ["records near an example", d["near_leaks"]],
            ["closest similarity to an example", f"{d['closest_leak_similarity']}%"],
            ["rule violations", d["rule_violations"] or "no rules given"],
            ["invalid, by first failing field", d["invalid_by_field"] or "none"]])
        fields = table(["field", "distinct", "entropy (bits)", "min", "mean", "max", "most common"],
                       [[k, v["distinct"], v["entropy_bits"], v.get("min", ""), v.get("mean", ""),
                         v.get("max", ""), v["top"]] for k, v in d["fields"].items()])
        sections: list[tuple[str, Any]] = [("Overview", overview), ("Fields", fields),
                                           *extra_sections]
        for name, counter in self.values.items():
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in counter)
            if numeric and len(counter) > CATEGORY_LIMIT // 3:
                fig = go.Figure(go.Histogram(x=list(counter.elements()), nbinsx=30))
                fig.update_layout(height=260, margin={"t": 10}, xaxis_title=name, yaxis_title="records")
                sections.append((f"{name}: distribution", fig))
            elif len(counter) <= CATEGORY_LIMIT:
                common = counter.most_common()
                fig = go.Figure(go.Bar(x=[str(v) for v, _ in common], y=[c for _, c in common]))
                fig.update_layout(height=260, margin={"t": 10}, yaxis_title="records")
                sections.append((f"{name}: frequencies", fig))
        return page(f"Quality report: {self.schema.name}", sections,
                    f"{d['rows']} rows · schema {self.schema.name}")

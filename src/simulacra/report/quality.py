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
from simulacra.checks.plausible import PlausibilityGate
from simulacra.checks.propose import propose_rules
from simulacra.checks.rules import Rule, parse_rules
from simulacra.engine.diversity import free_text_fields, steered_fields
from simulacra.schema import RecordInvalid, Schema
from simulacra.score import flatten

CATEGORY_LIMIT = 30  # a field with at most this many distinct values is charted as categories
OVERUSED_SHARE = 0.05   # a free-text value in more records than this is named as over-used
EXAMPLE_REUSE_SHARE = 0.01  # an example's value in more records than this is named as over-used


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
        self.implausible: Counter = Counter()
        self.broken_orderings: Counter = Counter()
        self._plausible = PlausibilityGate(schema.decoding_schema(), [])
        decoding = schema.decoding_schema()
        self._free_text = {".".join(p) for p in free_text_fields(decoding)}
        # where values are meant to vary: free strings and wide numbers (not enums, a 1-5
        # rating or a null; those repeat the examples' values by chance)
        self._varied = {".".join(p) for p in steered_fields(decoding)}
        self._seen: set[str] = set()
        self._near = NearDuplicates(near_threshold)
        self._examples = NearDuplicates(near_threshold)
        examples = [self._normalized(e) for e in examples]
        self._example_keys = {canonical(e) for e in examples}
        for example in examples:
            self._examples.add(example)
        self._example_values: dict[str, set] = {}
        for example in examples:
            for name, value in flatten(example).items():
                if value is not None and not isinstance(value, list | dict):
                    self._example_values.setdefault(name, set()).add(value)
        given = {r.text for r in self.rules}
        self._kept_orderings = [r for r in parse_rules(propose_rules(schema, examples))
                                if r.text not in given] if len(examples) >= 2 else []

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
        for rule in self._kept_orderings:
            if not rule.holds(record):
                self.broken_orderings[rule.text] += 1
        reason = self._plausible.reason(record) if isinstance(record, dict) else None
        if reason:
            self.implausible[reason.split(":", 1)[0].removeprefix("implausible ")] += 1
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
            "implausible": dict(self.implausible),
            "example_value_reuse": self.example_value_reuse(),
            "orderings_broken_that_examples_keep": dict(self.broken_orderings),
            "fields": self.field_stats(),
            "problems": self.problems(),
        }

    def example_value_reuse(self) -> dict[str, int]:
        """Per field, the records whose value is one of the examples' values for it."""
        return {name: sum(counter[v] for v in self._example_values.get(name, ()) if v in counter)
                for name, counter in self.values.items() if name in self._example_values}

    def problems(self) -> list[str]:
        """What a reader of the data would notice, with counts; [] when nothing stands out."""
        rows, found = self.valid or 1, []
        if self.leaks_exact or self.leaks_near:
            found.append(f"{self.leaks_exact + self.leaks_near} records copy or nearly copy an "
                         "example")
        for name, counter in self.values.items():
            if name not in self._varied:
                continue
            examples = self._example_values.get(name, set())
            reused = [(v, c) for v, c in counter.most_common() if v in examples]
            others = [c for v, c in counter.most_common(len(reused) + 1) if v not in examples]
            if reused and reused[0][1] > max(2, EXAMPLE_REUSE_SHARE * rows) and \
                    reused[0][1] > (others[0] if others else 0):
                value, count = reused[0]
                found.append(f"{name}: the example value {value!r} in {count} records")
            elif name in self._free_text and counter and rows >= 20:
                value, count = counter.most_common(1)[0]
                if count > OVERUSED_SHARE * rows:
                    found.append(f"{name}: {value!r} in {count / rows:.0%} of records")
        for reason, count in self.implausible.most_common():
            found.append(f"{count} records with an implausible value ({reason})")
        for rule, count in self.broken_orderings.most_common():
            found.append(f"{count} records break '{rule}', which every example keeps")
        return found

    def summary(self) -> str:
        d = self.as_dict()
        distinct = ", ".join(f"{k} {v['distinct']}" for k, v in d["fields"].items())
        rules = ", ".join(f"{k}: {v}" for k, v in d["rule_violations"].items()) or "none given"
        problems = "; ".join(d["problems"]) or "none found"
        return (f"quality: {d['valid']}/{d['rows']} valid · exact duplicates "
                f"{d['exact_duplicate_rate']:.0%} · near duplicates {d['near_duplicate_rate']:.0%} · "
                f"copies of examples {d['leaked_examples']} (closest {d['closest_leak_similarity']}% "
                f"similar) · rule violations: {rules} · distinct values: {distinct}\n"
                f"problems: {problems}")

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
            ["invalid, by first failing field", d["invalid_by_field"] or "none"],
            ["problems", "; ".join(d["problems"]) or "none found"]])
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

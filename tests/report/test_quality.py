"""The quality summary names what a reader would notice, and stays quiet otherwise."""

from simulacra.report.quality import QualityReport
from simulacra.schema import load_schema

SCHEMA = load_schema({"type": "object", "properties": {
    "name": {"type": "string"}, "stars": {"type": "integer", "minimum": 1, "maximum": 5},
    "price": {"type": "number"}, "cost": {"type": "number"}}})
EXAMPLES = [{"name": "Ann Lee", "stars": 4, "price": 10.0, "cost": 4.0},
            {"name": "Bo Chen", "stars": 5, "price": 20.0, "cost": 15.0}]


def report(rows):
    quality = QualityReport(SCHEMA, examples=EXAMPLES)
    for row in rows:
        quality.add(row)
    return quality


def test_overused_example_values_implausible_values_and_broken_orderings_are_named():
    rows = [{"name": "Ann Lee" if i < 10 else f"Person {chr(65 + i % 26)}{i}", "stars": 4,
             "price": 30.0 + i, "cost": 50.0 if i < 3 else 10.0} for i in range(40)]
    rows.append({"name": "N/A", "stars": 4, "price": 1.0, "cost": 0.5})
    problems = report(rows).problems()
    assert "name: the example value 'Ann Lee' in 10 records" in problems
    assert "1 records with an implausible value (placeholder)" in problems
    assert "3 records break 'cost <= price', which every example keeps" in problems
    assert not any(p.startswith("stars") for p in problems)   # a 1-5 rating repeats by chance


def test_varied_data_has_no_problems():
    rows = [{"name": f"Person {chr(65 + i)}x", "stars": 1 + i % 5, "price": 30.0 + i,
             "cost": 10.0 + i} for i in range(25)]
    quality = report(rows)
    assert quality.problems() == []
    assert quality.summary().endswith("problems: none found")

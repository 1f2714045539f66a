"""Two builds' quality, seed by seed: reads the JSON lines `bench/quality_dump.py` appended for
each build, scores both with this checkout's scorers, and prints per field the mean of each
side, the paired difference (after - before) with its standard error, and whether the field
is lower by the rule:

    a field is lower when its mean difference is worse than two standard errors of the
    paired differences, or worse by more than --rt-bound (round trip) / --div-bound
    (diversity shares), whatever the standard error.

    .venv/bin/python bench/quality_compare.py before.jsonl after.jsonl

Only seeds present on both sides count. Round trip: each field's match rate, a list's set F1,
record exact, grounded texts. Diversity (the job's examples judge reuse whether or not they
were shown): valid share, each string field's distinct share and top-value share, each
field's example-value reuse, near-duplicate share.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.diversity import JOBS as DIVERSITY_JOBS  # noqa: E402
from bench.roundtrip import JOBS as ROUNDTRIP_JOBS  # noqa: E402

from simulacra.checks.dedup import DEFAULT_THRESHOLD  # noqa: E402
from simulacra.errors import GenerationError  # noqa: E402
from simulacra.report.quality import QualityReport  # noqa: E402
from simulacra.roundtrip import score_records  # noqa: E402
from simulacra.schema import RecordInvalid, Schema, load_schema  # noqa: E402

LOWER_IS_BETTER = ("top share", "example reuse", "near duplicates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rt-bound", type=float, default=0.02)
    parser.add_argument("--div-bound", type=float, default=0.03)
    args = parser.parse_args()
    before, after = read(args.before), read(args.after)
    lower = []
    for group in sorted(set(before) & set(after)):
        seeds = sorted(set(before[group]) & set(after[group]))
        bound = args.rt_bound if group[0] == "roundtrip" else args.div_bound
        sides = [[metrics(group, rows[group][s]) for s in seeds] for rows in (before, after)]
        names = [m for m in sides[1][0] if all(m in x for side in sides for x in side)]
        title = " ".join(str(g) for g in group)
        print(f"\n{title}, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)})")
        print("| field | before | after | after - before (se) | seeds better / worse |")
        print("| --- | --- | --- | --- | --- |")
        for name in names:
            b = [x[name] for x in sides[0]]
            a = [x[name] for x in sides[1]]
            sign = -1 if name.endswith(LOWER_IS_BETTER) else 1
            diffs = [(y - x) * sign for x, y in zip(b, a, strict=True)]
            mean, se = _mean(diffs), _se(diffs)
            verdict = mean < -2 * se or mean < -bound
            if verdict:
                lower.append(f"{title}: {name}")
            better = sum(d > 0 for d in diffs)
            worse = sum(d < 0 for d in diffs)
            print(f"| {name} | {_mean(b):.3f} | {_mean(a):.3f} | {sign * mean:+.3f} ({se:.3f})"
                  f"{' **lower**' if verdict else ''} | {better} / {worse} |")
    print("\nlower:", ", ".join(lower) if lower else "none")


def read(path: Path) -> dict[tuple, dict[int, dict]]:
    """Rows by (kind, job[, examples]) and seed; a seed written twice keeps its last row."""
    out: dict[tuple, dict[int, dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        group = (row["kind"], row["job"]) if row["kind"] == "roundtrip" else (
            row["kind"], row["job"], "with examples" if row["examples"] else "without examples")
        out.setdefault(group, {})[row["seed"]] = row
    return out


def metrics(group: tuple, row: dict) -> dict[str, float]:
    return roundtrip_metrics(row) if group[0] == "roundtrip" else diversity_metrics(row)


def roundtrip_metrics(row: dict) -> dict[str, float]:
    schema = job_schema("roundtrip", row["job"])
    extracted = []
    for data in row["extracted"]:
        try:
            extracted.append(GenerationError("no record") if data is None else schema.validate(data))
        except RecordInvalid as exc:
            extracted.append(GenerationError(str(exc)))
    scores = score_records(schema, row["golds"], row["texts"], extracted, row["grounded"])
    out = {}
    for name, field in scores["fields"].items():
        out[name] = field["match_rate"]
        if field["kind"] == "list":
            out[f"{name} set F1"] = field["set_f1"]
    out["record exact"] = scores["record_exact_rate"]
    out["grounded texts"] = scores["grounding_rate"]
    return out


def diversity_metrics(row: dict) -> dict[str, float]:
    _, examples, _, _ = DIVERSITY_JOBS[row["job"]]
    report = QualityReport(job_schema("diversity", row["job"]), examples=examples,
                           near_threshold=DEFAULT_THRESHOLD)
    for record in row["records"]:
        report.add(record)
    kept = max(1, report.valid)
    out = {"valid share": report.valid / row["n"]}
    for name, counter in report.values.items():
        if all(isinstance(v, str) or v is None for v in counter):
            out[f"{name} distinct share"] = len(counter) / kept
            out[f"{name} top share"] = counter.most_common(1)[0][1] / kept
    for name, count in report.example_value_reuse().items():
        out[f"{name} example reuse"] = count / kept
    out["near duplicates"] = report.near_duplicates / kept
    return out


@functools.cache
def job_schema(kind: str, job: str) -> Schema:
    """A job's schema, loaded once for all its seeds."""
    return load_schema((ROUNDTRIP_JOBS if kind == "roundtrip" else DIVERSITY_JOBS)[job][0])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _se(values: list[float]) -> float:
    if len(values) < 2:
        return float("inf")
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


if __name__ == "__main__":
    main()

"""Schema coverage on real-world JSON Schemas (JSONSchemaBench), embedded model.

    .venv/bin/python bench/schema_coverage.py [--corpus DIR] [-n 2] [--json] [--only SUBSTR]

For each schema: whether `simulacra check` accepts it, how many of n records were made,
how full they are (records with no value at all, and values per record), how many string
values were cut at the decoder's own bound (MAX_STRING, for strings the schema does not
bound: the model ran on), how many string values, list items included, are bits of JSON
(`"}, "`, `": ["`) or have no letter or digit (`","`, `">"`), how many hold a run of more
digits than the decoder lets a string have where the grammar allows otherwise
(MAX_STRING_DIGITS), and whether every
written record validates (Python `jsonschema`, the schema's own dialect,
format checks on), with the time taken. Per subset: declared coverage (accepted / all),
empirical coverage (schemas whose n records were all made and valid / all), compliance
(written records that validate / written), beside the paper's best engine. Then the refused
and failing schemas with their reasons, and the benchmark's labelled instances scored with
simulacra's own record validation against their labels and against `jsonschema`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "jsonschemabench"
# Table 4 of the paper (../shared/corpus/jsonschemabench/PAPER.md): best empirical coverage.
PAPER_BEST = {"Glaiveai2K": 0.96, "Github_easy": 0.86, "Snowplow": 0.82, "Github_medium": 0.69,
              "Kubernetes": 0.91, "WashingtonPost": 0.94, "Github_hard": 0.41,
              "JsonSchemaStore": 0.38}


def independent_validator(schema):
    """The referee: jsonschema's validator for the schema's declared dialect (2020-12 when
    it declares none), format checks on. Deliberately not simulacra's own code."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def run_schema(path: Path, backend, n: int, max_attempts: int) -> dict:
    from simulacra import Generator
    from simulacra.backends._decode import MAX_STRING_DIGITS
    from simulacra.checks.plausible import filled_values, is_punctuation
    from simulacra.errors import SimulacraError, UnsupportedSchemaError
    from simulacra.schema.load import load_schema_unchecked
    from simulacra.schema.model import MAX_STRING

    row = {"schema": path.stem, "subset": path.stem.split("__")[0], "accepted": False,
           "made": 0, "valid": 0, "reason": "", "seconds": 0.0}
    started = time.perf_counter()
    js = json.loads(path.read_text())
    try:
        report = load_schema_unchecked(path).support
    except SimulacraError as exc:
        row["reason"] = f"load: {exc}"
        return row
    if report.refused:
        first = report.refused[0]
        row["reason"] = f"refused at {first.path}: {first.note}"
        return row
    row["accepted"] = True
    referee = independent_validator(js)
    try:
        generator = Generator(path, model=backend, seed=7, max_attempts=max_attempts)
        long_run = re.compile(rf"[0-9]{{{MAX_STRING_DIGITS + 1}}}")
        for outcome in generator.outcomes(n):
            row["made"] += 1
            # a third of the corpus's schemas leave every property optional: {} is valid there
            filled = filled_values(outcome.data)
            row["values"] = row.get("values", 0) + filled
            row["empty"] = row.get("empty", 0) + (filled == 0)
            strings = strings_of(outcome.data)
            row["strings"] = row.get("strings", 0) + len(strings)
            row["cut"] = row.get("cut", 0) + sum(len(s) == MAX_STRING for s in strings)
            # bits of JSON or no letter or digit, judged as the gate judges punctuation
            row["junk"] = row.get("junk", 0) + sum(is_punctuation(s.strip()) for s in strings)
            row["digits"] = row.get("digits", 0) + sum(bool(long_run.search(s)) for s in strings)
            errors = list(referee.iter_errors(outcome.data))
            if errors:
                row.setdefault("invalid", []).append(errors[0].message[:200])
            else:
                row["valid"] += 1
        failed = generator.stats.failed
        if failed:
            row["reason"] = failed[0][1][:300]
        row["rejected"] = dict(generator.stats.rejected)
    except UnsupportedSchemaError as exc:
        row["reason"], row["refused_later"] = f"refused after check: {exc}", True
    except SimulacraError as exc:
        row["reason"] = f"run: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, reported with the rest
        row["reason"], row["crashed"] = f"CRASH {type(exc).__name__}: {exc}"[:300], True
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def strings_of(value) -> list[str]:
    """Every string value in a record (keys aside), list items included."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_of(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_of(v)]
    return [value] if isinstance(value, str) else []


def score_instances(corpus: Path) -> dict:
    """simulacra's record validation on the benchmark's labelled instances."""
    from simulacra.errors import SimulacraError
    from simulacra.schema import RecordInvalid
    from simulacra.schema.load import load_schema_unchecked

    counts = Counter()
    for path in sorted((corpus / "instances").glob("*.json")):
        schema_path = corpus / path.name
        try:
            schema = load_schema_unchecked(schema_path)
        except SimulacraError:
            counts["schema not loaded"] += 1
            continue
        referee = independent_validator(json.loads(schema_path.read_text()))
        for test in json.loads(path.read_text()):
            try:
                schema.validate(test["data"])
                ours = True
            except RecordInvalid:
                ours = False
            theirs = referee.is_valid(test["data"])
            label = "valid" if test["valid"] else "invalid"
            counts[f"{label} instances"] += 1
            counts[f"{label} agreed with label"] += ours == test["valid"]
            counts["agreed with jsonschema"] += ours == theirs
            counts["jsonschema agreed with label"] += theirs == test["valid"]
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("-n", type=int, default=2, help="records per schema")
    parser.add_argument("--max-attempts", type=int, default=6)
    parser.add_argument("--only", default="", help="only schemas whose file name contains this")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from simulacra.backends.llamacpp import LlamaCppBackend

    paths = sorted(p for p in args.corpus.glob("*__*.json") if args.only in p.name)
    backend = LlamaCppBackend()
    rows = []
    for path in paths:
        row = run_schema(path, backend, args.n, args.max_attempts)
        rows.append(row)
        if not args.json:
            status = ("refused" if not row["accepted"] else
                      f"{row['valid']}/{args.n} valid" + (f" ({len(row.get('invalid', []))} "
                                                          "INVALID)" if row.get("invalid") else ""))
            print(f"{row['schema']:<48} {status:<22} {row['seconds']:>6.1f} s  "
                  f"{row['reason'][:110]}", flush=True)
    backend.close()
    summary = summarize(rows, args.n)
    instances = score_instances(args.corpus) if not args.only else {}
    if args.json:
        print(json.dumps({"n": args.n, "subsets": summary, "schemas": rows,
                          "instances": instances}, indent=1))
        return
    print_summary(summary, rows, instances)


def summarize(rows: list[dict], n: int) -> dict:
    by_subset: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_subset[row["subset"]].append(row)
    out = {}
    for subset, group in by_subset.items():
        declared = sum(r["accepted"] for r in group)
        empirical = sum(r["accepted"] and r["valid"] == n and r["made"] == n for r in group)
        written = sum(r["made"] for r in group)
        valid = sum(r["valid"] for r in group)
        out[subset] = {"schemas": len(group), "declared": declared / len(group),
                       "empirical": empirical / len(group),
                       "compliance": valid / written if written else 1.0,
                       "invalid_written": written - valid,
                       "truncated": sum("truncated" in r["reason"] for r in group),
                       "refused_later": sum(bool(r.get("refused_later")) for r in group),
                       "empty_records": sum(r.get("empty", 0) for r in group),
                       "values_per_record": sum(r.get("values", 0) for r in group) / written
                       if written else 0.0,
                       "strings": sum(r.get("strings", 0) for r in group),
                       "cut": sum(r.get("cut", 0) for r in group),
                       "junk": sum(r.get("junk", 0) for r in group),
                       "digits": sum(r.get("digits", 0) for r in group),
                       "paper_best": PAPER_BEST.get(subset),
                       "seconds_per_schema": sum(r["seconds"] for r in group) / len(group)}
    return out


def print_summary(summary: dict, rows: list[dict], instances: dict) -> None:
    print("\n| subset | schemas | declared | empirical | paper's best | compliance | invalid "
          "written | refused later | truncated | empty records | values/record | strings "
          "cut at the decoder's bound | strings of JSON or no letter or digit | strings with a "
          "longer digit run than the decoder's bound | s/schema |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
          "| --- |")
    for subset in [s for s in PAPER_BEST if s in summary] + sorted(set(summary) - set(PAPER_BEST)):
        d = summary[subset]
        best = f"{d['paper_best']:.2f}" if d["paper_best"] is not None else "-"
        print(f"| {subset} | {d['schemas']} | {d['declared']:.2f} | {d['empirical']:.2f} | {best} "
              f"| {d['compliance']:.2f} | {d['invalid_written']} | {d['refused_later']} "
              f"| {d['truncated']} | {d['empty_records']} | {d['values_per_record']:.1f} "
              f"| {d['cut']} of {d['strings']} | {d['junk']} | {d['digits']} "
              f"| {d['seconds_per_schema']:.1f} |")
    refused = [r for r in rows if not r["accepted"]]
    failing = [r for r in rows if r["accepted"] and r["reason"]]
    print(f"\nrefused by check: {len(refused)}")
    for r in refused:
        print(f"- {r['schema']}: {r['reason']}")
    print(f"\naccepted but not every record made: {len(failing)}")
    for r in failing:
        print(f"- {r['schema']} ({r['made']} made): {r['reason']}")
    if instances:
        print("\nlabelled instances, simulacra's validation:")
        for key, value in instances.items():
            print(f"- {key}: {value}")


if __name__ == "__main__":
    main()

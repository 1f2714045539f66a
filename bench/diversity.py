"""Do the records read like real data? One run, on the embedded model: the tutorial's
MedicalBilling job and two schemas with free-text fields (a customer profile, a product
review), each with and without the diversity steer and with and without examples.

    .venv/bin/python bench/diversity.py [-n 500] [--n-without 200] [--json] [--samples DIR]

Per configuration: valid %, records/s, distinct share and top-value share of each string
field, example-value reuse per field, near-duplicate share, violations of the rules
`--rule auto` proposes, records the plausibility gate would flag (in the output: 0 unless the
gate is off) and attempts it rejected, by reason. Every run uses `--rule auto` and no samplers.
`--samples DIR` writes each configuration's first 20 records there (for docs/quality.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.medical_billing import EXAMPLES, SUBJECT, MedicalBilling  # noqa: E402

from simulacra import Generator  # noqa: E402
from simulacra.backends.llamacpp import LlamaCppBackend  # noqa: E402
from simulacra.checks.dedup import DEFAULT_THRESHOLD  # noqa: E402
from simulacra.engine.diversity import DEFAULT_DIVERSITY  # noqa: E402
from simulacra.report.quality import QualityReport  # noqa: E402


class CustomerProfile(BaseModel):
    full_name: str
    city: str
    occupation: str
    about: str = Field(description="one or two sentences about the customer")


class ProductReview(BaseModel):
    product: str
    rating: int = Field(ge=1, le=5)
    title: str
    reviewer: str | None = None


CUSTOMER_EXAMPLES = [
    {"full_name": "Ines Varga", "city": "Porto", "occupation": "marine biologist",
     "about": "Buys dive gear twice a year and always reads the reviews first."},
    {"full_name": "Tobias Lindqvist", "city": "Uppsala", "occupation": "bakery owner",
     "about": "Orders flour and packaging in bulk; prefers delivery before 7 am."},
    {"full_name": "Adaeze Okafor", "city": "Enugu", "occupation": "civil engineer",
     "about": "New customer, came through a referral and asked about warranty terms."},
]
REVIEW_EXAMPLES = [
    {"product": "Stainless steel french press, 1 l", "rating": 4,
     "title": "Good coffee, the lid rattles", "reviewer": "Marta P."},
    {"product": "Noise-cancelling headphones NC-700", "rating": 2,
     "title": "Battery died after three months", "reviewer": None},
    {"product": "Cast iron skillet 26 cm", "rating": 5,
     "title": "Heavy, and worth it", "reviewer": "Kwame"},
]
JOBS = {
    # the tutorial's job as the issue ran it: its examples and subject, no extra instructions
    "medical_billing": (MedicalBilling, EXAMPLES, SUBJECT, ""),
    "customer_profile": (CustomerProfile, CUSTOMER_EXAMPLES, "customers of an online shop", ""),
    "product_review": (ProductReview, REVIEW_EXAMPLES, "product reviews from an online shop", ""),
}


def measure(backend, job: str, n: int, *, steer: bool, examples: bool, seed: int,
            diversity: float = DEFAULT_DIVERSITY) -> dict:
    schema, example_rows, subject, extra = JOBS[job]
    shown = example_rows if examples else []
    gen = Generator(schema, model=backend, examples=shown, subject=subject, extra=extra,
                    seed=seed, rules=["auto"], diversity=diversity if steer else 0.0)
    started = time.perf_counter()
    records = [o.data for o in gen.outcomes(n)]
    seconds = time.perf_counter() - started
    # Judged against the job's examples whether or not they were shown: a run without
    # examples should not reproduce them either.
    report = QualityReport(gen.schema, examples=example_rows, rules=gen.plan.rules,
                           near_threshold=DEFAULT_THRESHOLD)
    for record in records:
        report.add(record)
    d = report.as_dict()
    fields = {}
    for name, counter in report.values.items():
        if not all(isinstance(v, str) or v is None for v in counter):
            continue
        top_value, top = counter.most_common(1)[0]
        fields[name] = {"distinct_share": round(len(counter) / max(1, len(records)), 3),
                        "top_value": top_value, "top_share": round(top / max(1, len(records)), 3)}
    rejected = {k: v for k, v in gen.stats.rejected.items()}
    return {
        "job": job, "steer": steer, "examples": examples, "n": n, "valid": len(records),
        "valid_pct": round(100 * len(records) / n, 1), "seconds": round(seconds, 1),
        "records_per_s": round(len(records) / seconds, 3), "attempts": gen.stats.attempts,
        "string_fields": fields,
        "example_value_reuse": {k: round(v / max(1, len(records)), 3)
                                for k, v in d["example_value_reuse"].items()},
        "near_duplicate_share": d["near_duplicate_rate"],
        "rules": [r.text for r in gen.plan.rules], "rule_violations": d["rule_violations"],
        "implausible_in_output": d["implausible"],
        "rejected_attempts": rejected,
        "implausible_attempt_share": round(sum(v for k, v in rejected.items()
                                               if k.startswith("implausible"))
                                           / max(1, gen.stats.attempts), 3),
        "problems": d["problems"], "sample": records[:20],
    }


def line(r: dict) -> str:
    fields = " ".join(f"{k}[{v['distinct_share']:.0%} distinct, top {v['top_share']:.1%} "
                      f"{str(v['top_value'])[:20]!r}]"
                      for k, v in r["string_fields"].items())
    reuse = " ".join(f"{k} {v:.1%}" for k, v in r["example_value_reuse"].items() if v)
    rules = sum(r["rule_violations"].values())
    return (f"{r['job']:17} steer={'on ' if r['steer'] else 'off'} examples="
            f"{'yes' if r['examples'] else 'no '} valid {r['valid_pct']:.0f}% "
            f"{r['records_per_s']:.2f} rec/s | {fields} | example reuse: {reuse or 'none'} | "
            f"near dup {r['near_duplicate_share']:.1%} | rule violations {rules} | implausible "
            f"attempts {r['implausible_attempt_share']:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="records per run with examples")
    parser.add_argument("--n-without", type=int, default=200, help="records per run without")
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated job names")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--diversity", type=float, default=DEFAULT_DIVERSITY,
                        help="the steer's setting in the steered runs")
    parser.add_argument("--steer-only", action="store_true", help="skip the runs without it")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--samples", type=Path, help="write each run's first 20 records here")
    args = parser.parse_args()
    backend = LlamaCppBackend()
    results = []
    for job in args.jobs.split(","):
        for examples in (True, False):
            for steer in (True,) if args.steer_only else (False, True):
                n = args.n if examples else args.n_without
                if not n:
                    continue
                result = measure(backend, job, n, steer=steer, examples=examples, seed=args.seed,
                                 diversity=args.diversity)
                results.append(result)
                print(line(result), file=sys.stderr, flush=True)
                if args.samples:
                    args.samples.mkdir(parents=True, exist_ok=True)
                    name = f"{job}-{'steer' if steer else 'plain'}-{'ex' if examples else 'noex'}"
                    (args.samples / f"{name}.jsonl").write_text("".join(
                        json.dumps(r, ensure_ascii=False) + "\n" for r in result["sample"]))
    pairs = Counter()
    for r in results:
        if r["steer"]:
            plain = next((p for p in results if p["job"] == r["job"] and not p["steer"]
                          and p["examples"] == r["examples"]), None)
            if plain is None:
                continue
            ratio = r["records_per_s"] / plain["records_per_s"]
            pairs[f"{r['job']} {'with' if r['examples'] else 'without'} examples"] = round(ratio, 2)
            print(f"records/s with the steer / without: {r['job']}, "
                  f"{'with' if r['examples'] else 'without'} examples: {ratio:.2f}x",
                  file=sys.stderr)
    if args.json:
        print(json.dumps({"runs": [{k: v for k, v in r.items() if k != "sample"} for r in results],
                          "steer_speed_ratio": dict(pairs)}, indent=2, default=str))


if __name__ == "__main__":
    main()

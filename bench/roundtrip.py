"""The round-trip benchmark on the tutorial's two schemas (Actor, MedicalBilling), embedded model.

    .venv/bin/python bench/roundtrip.py [-n 10] [--out bench/out]
    .venv/bin/python bench/roundtrip.py -n 30 --jobs Actor --seeds 1-12

Prints per-field match rates, record exact-match and grounding rates; writes report.json and
report.html per schema under --out. With several seeds (a comparison of two builds needs
hundreds of records: one run of 30 moves by several records from seed to seed), each seed's
run is printed and the fields' rates are pooled over all of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples import actor, medical_billing  # noqa: E402

from simulacra.report import write_report  # noqa: E402
from simulacra.report.roundtrip import render  # noqa: E402
from simulacra.roundtrip import roundtrip  # noqa: E402

JOBS = {
    "Actor": (actor.Actor, actor.EXAMPLES, "actor_filmography", {"style": "informal"}),
    "MedicalBilling": (medical_billing.MedicalBilling, medical_billing.EXAMPLES,
                       medical_billing.SUBJECT, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated: Actor,MedicalBilling")
    parser.add_argument("--seeds", default="1", help="seeds, e.g. 1,2,3 or 1-12 (pooled)")
    args = parser.parse_args()
    for name in args.jobs.split(","):
        schema, examples, subject, prefs = JOBS[name]
        pooled: dict[str, list[float]] = {}
        runs = seeds(args.seeds)
        for seed in runs:
            report = roundtrip(schema, args.n, examples=examples, subject=subject, seed=seed,
                               **prefs)
            data = report.as_dict()
            write_report(args.out / f"roundtrip-{name}-seed{seed}", data, render(data))
            m = data["models"]["gemma-270m"]
            fields = ", ".join(f"{f} {s['match_rate']:.3f}" + (
                f" (set F1 {s['set_f1']:.3f})" if s["kind"] == "list" else "")
                for f, s in m["fields"].items())
            print(f"{name} n={args.n} seed {seed}: record exact {m['record_exact_rate']:.3f}, "
                  f"grounded texts {m['grounding_rate']:.2f}, failures {m['failures'] or 'none'}"
                  f", {data['timings']['total_s']} s", flush=True)
            print(f"  fields: {fields}", flush=True)
            for f, s in m["fields"].items():
                pooled.setdefault(f, []).append(s["match_rate"])
                if s["kind"] == "list":
                    pooled.setdefault(f"{f} set F1", []).append(s["set_f1"])
            pooled.setdefault("record exact", []).append(m["record_exact_rate"])
        if len(runs) > 1:
            print(f"{name}, {len(runs)} seeds of {args.n}, mean: " + ", ".join(
                f"{f} {sum(v) / len(v):.3f}" for f, v in pooled.items()))


def seeds(spec: str) -> list[int]:
    """"1,2,5" or "1-12" (or both: "1-3,7")."""
    out: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


if __name__ == "__main__":
    main()

"""The round-trip benchmark on the tutorial's two schemas (Actor, MedicalBilling), embedded model.

    .venv/bin/python bench/roundtrip.py [-n 10] [--out bench/out]

Prints per-field match rates, record exact-match and grounding rates; writes report.json and
report.html per schema under --out.
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
    args = parser.parse_args()
    for name, (schema, examples, subject, prefs) in JOBS.items():
        report = roundtrip(schema, args.n, examples=examples, subject=subject, seed=1, **prefs)
        data = report.as_dict()
        write_report(args.out / f"roundtrip-{name}", data, render(data))
        m = data["models"]["gemma-270m"]
        fields = ", ".join(f"{f} {s['match_rate']:.2f}" + (f" (set F1 {s['set_f1']:.2f})"
                                                           if s["kind"] == "list" else "")
                           for f, s in m["fields"].items())
        print(f"{name} n={args.n}: record exact {m['record_exact_rate']:.2f}, grounded texts "
              f"{m['grounding_rate']:.2f}, failures {m['failures'] or 'none'}, "
              f"{data['timings']['total_s']} s")
        print(f"  fields: {fields}")


if __name__ == "__main__":
    main()

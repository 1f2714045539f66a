"""Records/s on Ray Data with 1 and 2 actors, next to the single-process engine, in one run.

    .venv/bin/python bench/ray_scale.py [-n 64] [--model gemma-270m] [--json]

The MedicalBilling job (examples, subject, seed 0) on the embedded model:
1. the engine in this process (no Ray), all CPUs as llama.cpp threads;
2. Ray Data on a local cluster with 1 actor (all CPUs), then 2 actors (CPUs split), shards
   of n / (2 x actors) records, written as Parquet. The Ray figures include the actors'
   start-up (each loads the model) and the cross-shard dedup step: what a user waits for.
Each Ray run writes to a fresh directory, so nothing is resumed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEDICAL = f"{ROOT / 'examples' / 'medical_billing.py'}:MedicalBilling"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=64)
    parser.add_argument("--model", default=None, help="default: the embedded model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from simulacra import Generator
    from simulacra.engine.ray_data import connect

    examples = [json.loads(line) for line in
                (ROOT / "examples" / "medical_billing.jsonl").read_text().splitlines()]

    def generator() -> Generator:
        return Generator(MEDICAL, model=args.model, examples=examples, subject="medical_billing",
                         seed=0)

    results = {"n": args.n, "cpus": os.cpu_count()}
    gen = generator()
    started = time.perf_counter()
    local = gen.generate(args.n)
    results["engine_rps"] = len(local) / (time.perf_counter() - started)
    gen.close()

    connect(None)
    for actors in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            gen = generator()
            started = time.perf_counter()
            summary = gen.generate_ray(args.n, str(Path(tmp) / "shards"), actors=actors,
                                       shard_size=math.ceil(args.n / (2 * actors)))
            seconds = time.perf_counter() - started
            gen.close()
        results[f"ray_{actors}_rps"] = summary.records / seconds
        results[f"ray_{actors}_records"] = summary.records

    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in results.items()}))
        return
    base = results["engine_rps"]
    print(f"MedicalBilling, n={args.n}, {results['cpus']} CPUs, model {args.model or 'gemma-270m'}")
    print(f"  engine, one process      {base:6.2f} records/s   1.00x")
    for actors in (1, 2):
        rps = results[f"ray_{actors}_rps"]
        print(f"  Ray Data, {actors} actor{'s' if actors > 1 else ' '}       {rps:6.2f} records/s "
              f"  {rps / base:.2f}x  ({results[f'ray_{actors}_records']} records)")


if __name__ == "__main__":
    main()

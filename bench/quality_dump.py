"""One seed of the quality benchmarks on whichever simulacra is importable, its raw outputs
appended as one JSON line: half of a comparison of two builds (`bench/quality_compare.py`
scores both sides with one scorer, so a change in the scoring code cannot pass for a change
in quality).

    PY bench/quality_dump.py roundtrip Actor 3 --out after.jsonl
    PY bench/quality_dump.py diversity product_review 5 -n 200 --out after.jsonl
    PY bench/quality_dump.py diversity product_review 5 -n 100 --no-examples --out after.jsonl

`--tree DIR` is the checkout whose `bench/roundtrip.py` and `bench/diversity.py` jobs are used (run an
older build with its own interpreter and `PYTHONPATH=DIR/src`). Only the API every version
since issue #19 has is used: `Generator(...).outcomes`, `TextWriter.write_many`,
`Extractor.extract_batch`, each with its defaults (the round trip as `bench/roundtrip.py`
runs it: the job's examples and subject, Actor's texts informal, `-n 30`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("roundtrip", "diversity"))
    parser.add_argument("job", help="a job of bench/roundtrip.py or bench/diversity.py")
    parser.add_argument("seed", type=int)
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--no-examples", action="store_true", help="diversity: no examples shown")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree))
    from simulacra.backends.registry import get_backend

    backend = get_backend(None)
    started = time.perf_counter()
    if args.kind == "roundtrip":
        row = roundtrip_row(backend, args.job, args.seed, args.n)
    else:
        row = diversity_row(backend, args.job, args.seed, args.n, not args.no_examples)
    row.update(kind=args.kind, job=args.job, seed=args.seed, n=args.n,
               seconds=round(time.perf_counter() - started, 1))
    with args.out.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
    print(f"{args.kind} {args.job} seed {args.seed}: {row['seconds']} s", flush=True)


def roundtrip_row(backend, job: str, seed: int, n: int) -> dict:
    from bench.roundtrip import JOBS

    from simulacra import Generator
    from simulacra.extract import Extractor
    from simulacra.schema import load_schema
    from simulacra.text import TextWriter

    schema, examples, subject, preferences = JOBS[job]
    loaded = load_schema(schema)
    generator = Generator(loaded, model=backend, examples=examples, subject=subject, seed=seed)
    golds = [loaded.dump(r) for r in generator.generate(n)]
    written = TextWriter(backend, preferences or None, seed=seed).write_many(golds)
    extracted = Extractor(loaded, model=backend, seed=seed).extract_batch([w.text for w in written])
    return {"golds": golds, "texts": [w.text for w in written],
            "grounded": [w.grounded for w in written],
            "extracted": [None if isinstance(x, Exception) else loaded.dump(x)
                          for x in extracted]}


def diversity_row(backend, job: str, seed: int, n: int, examples: bool) -> dict:
    from bench.diversity import JOBS

    from simulacra import Generator

    schema, example_rows, subject, extra = JOBS[job]
    generator = Generator(schema, model=backend, examples=example_rows if examples else [],
                          subject=subject, extra=extra, seed=seed)
    outcomes = list(generator.outcomes(n))
    return {"examples": examples, "records": [o.data for o in outcomes if o.ok],
            "failed": sum(not o.ok for o in outcomes)}


if __name__ == "__main__":
    main()

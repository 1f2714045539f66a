"""Useful records/s through an OpenAI-compatible endpoint: simulacra against the plain loop
most tools run (one structured-output request per record through the openai SDK, whatever
comes back is kept). Both on one local `llama_cpp.server` serving the embedded GGUF, the
tutorial's MedicalBilling job, in one run.

    .venv/bin/python bench/endpoint.py [-n 20] [--json]

Useful = valid, not equal to a record made before it, and not a copy of an example (its text
fields at least 90% similar to an example's, the similarity `simulacra report` shows).
Wasted = requests that gave no useful record (refused by the server, invalid, duplicate or
copy). simulacra runs with a fresh cache directory, so it probes the structured-output ladder
as a first run would; a second run shows what remembering the rung saves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.medical_billing import EXAMPLES, SUBJECT, MedicalBilling  # noqa: E402
from rapidfuzz import fuzz  # noqa: E402
from tests.llama_server import MODEL_ALIAS as MODEL  # noqa: E402
from tests.llama_server import start_llama_server, stop_llama_server  # noqa: E402

from simulacra import Generator, load_schema  # noqa: E402
from simulacra.backends.openai import SYSTEM  # noqa: E402
from simulacra.plan import Plan  # noqa: E402

COPY_SIMILARITY = 90.0


def text_of(record: dict) -> str:
    return " ".join(str(v) for v in record.values() if isinstance(v, str))


def useful(records: list[dict]) -> int:
    """Records that are new and not a copy of an example, in the order they were made."""
    seen, count = set(), 0
    examples = [text_of(e) for e in EXAMPLES]
    for record in records:
        key = json.dumps(record, sort_keys=True)
        copy = max(fuzz.ratio(text_of(record), e) for e in examples) >= COPY_SIMILARITY
        if key not in seen and not copy:
            count += 1
        seen.add(key)
    return count


def plain_loop(url: str, n: int) -> dict:
    """One request per record, the schema as llama.cpp server's response format, no checks."""
    import openai

    schema = load_schema(MedicalBilling)
    prompt = Plan.build(schema, EXAMPLES, subject=SUBJECT).prompt(random.Random(0))
    client = openai.OpenAI(base_url=url, api_key="not-needed")
    records, started = [], time.perf_counter()
    for i in range(n):
        reply = client.chat.completions.create(
            model=MODEL, temperature=0.9, seed=i, max_tokens=256,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            response_format={"type": "json_object", "schema": schema.json_schema})
        with contextlib.suppress(ValueError):
            records.append(schema.dump(schema.validate(json.loads(reply.choices[0].message.content))))
    seconds = time.perf_counter() - started
    return {"requests": n, "valid": len(records), "useful": useful(records), "seconds": seconds}


def simulacra_run(url: str, n: int, seed: int) -> dict:
    gen = Generator(MedicalBilling, model=f"openai/{MODEL}", examples=EXAMPLES, subject=SUBJECT,
                    seed=seed, backend_options={"base_url": url})
    started = time.perf_counter()
    records = [r.model_dump() for r in gen.stream(n)]
    seconds = time.perf_counter() - started
    sent = gen.backend.requests
    gen.close()
    return {"requests": sent, "valid": len(records), "useful": useful(records),
            "seconds": seconds, "routes": dict(gen.stats.routes),
            "rejected": dict(gen.stats.rejected)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SIMULACRA_CACHE_DIR"] = str(Path(tmp) / "cache")   # a first run's cache
        proc, url = start_llama_server(Path(tmp) / "server.log")
        try:
            plain = plain_loop(url, args.n)
            first = simulacra_run(url, args.n, seed=1)
            again = simulacra_run(url, args.n, seed=2)   # same cache: the rung is remembered
        finally:
            stop_llama_server(proc)
    result = {"n": args.n}
    for name, r in (("plain", plain), ("simulacra", first), ("simulacra_again", again)):
        r["useful_per_s"] = round(r["useful"] / r["seconds"], 4)
        r["wasted_pct"] = round(100 * (r["requests"] - r["useful"]) / r["requests"], 1)
        r["seconds"] = round(r["seconds"], 1)
        result[name] = r
    result["ratio"] = round(first["useful_per_s"] / plain["useful_per_s"], 2)
    result["ratio_again"] = round(again["useful_per_s"] / plain["useful_per_s"], 2)
    if args.json:
        print(json.dumps(result))
        return
    for name in ("plain", "simulacra", "simulacra_again"):
        r = result[name]
        print(f"{name:16} {r['useful']}/{args.n} useful, {r['valid']} valid, {r['requests']} "
              f"requests ({r['wasted_pct']}% wasted) in {r['seconds']} s = {r['useful_per_s']} "
              f"useful/s" + (f"  routes {r['routes']} rejected {r['rejected']}"
                             if "routes" in r else ""))
    print(f"simulacra / plain loop, useful records/s: {result['ratio']}x first run, "
          f"{result['ratio_again']}x with the rung remembered")


if __name__ == "__main__":
    main()

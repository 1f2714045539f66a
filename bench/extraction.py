"""Slot precision/recall/F1 of extraction on the labelled set, per route, on the embedded model.

    .venv/bin/python bench/extraction.py [--json]

Routes: `format-instructions` (a JSON-schema prompt and the tolerant parser, like LangChain's
PydanticOutputParser), `grammar` (constrained decoding against the schema, zero-shot) and
`extractive` (simulacra's default: constrained, with free strings limited to spans of the text).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.data.extraction_schemas import SCHEMAS  # noqa: E402

from simulacra.backends.base import Request  # noqa: E402
from simulacra.backends.llamacpp import LlamaCppBackend  # noqa: E402
from simulacra.extract import Extractor  # noqa: E402
from simulacra.parse import ReplyParseError, parse_reply  # noqa: E402
from simulacra.score import prf, slot_counts  # noqa: E402

DATA = ROOT / "tests" / "data" / "extraction_set.jsonl"


def format_instructions_route(backend, schema, text: str) -> dict | None:
    js = schema.model_json_schema()
    prompt = ("Extract fields from a given text.\nThe output should be formatted as a JSON instance "
              f"that conforms to the JSON schema below.\n```\n{json.dumps(js)}\n```\n{text}\n")
    [c] = backend.complete([Request(prompt=prompt, max_tokens=160, temperature=0.0, seed=0)])
    try:
        return schema.model_validate(parse_reply(c.text)).model_dump()
    except (ReplyParseError, ValueError):
        return None


def run(backend, rows, route: str) -> tuple[dict, dict]:
    totals = [0, 0, 0]
    by_domain: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    extractors = {d: Extractor(s, model=backend, extractive=route == "extractive")
                  for d, s in SCHEMAS.items()}
    for row in rows:
        schema = SCHEMAS[row["domain"]]
        if route == "format-instructions":
            pred = format_instructions_route(backend, schema, row["text"])
        else:
            try:
                pred = extractors[row["domain"]].extract(row["text"]).model_dump()
            except Exception:  # noqa: BLE001 - a failed extraction scores as no slots
                pred = None
        counts = slot_counts(pred, row["gold"])
        for i in range(3):
            totals[i] += counts[i]
            by_domain[row["domain"]][i] += counts[i]
    return prf(*totals), {d: prf(*c)["f1"] for d, c in sorted(by_domain.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    backend = LlamaCppBackend(batch=4)
    results = {}
    for route in ("format-instructions", "grammar", "extractive"):
        started = time.perf_counter()
        overall, domains = run(backend, rows, route)
        results[route] = {**overall, "by_domain": domains,
                          "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps({"texts": len(rows), "routes": results}))
        return
    print(f"{len(rows)} texts, {len(SCHEMAS)} domains, embedded Gemma 3 270M")
    for route, r in results.items():
        print(f"{route:>20}: P {r['precision']:.2f}  R {r['recall']:.2f}  F1 {r['f1']:.2f}  "
              f"({r['seconds']} s)  by domain F1: {r['by_domain']}")


if __name__ == "__main__":
    main()

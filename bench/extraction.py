"""Slot precision/recall/F1 of extraction on the embedded model: SNIPS slot filling (six
intents, zero-shot and with k labelled examples), the labelled set in tests/data per route,
and the tutorial's Actor round trip (films found and missed).

    .venv/bin/python bench/extraction.py [--json] [--limit 100] [--k 0,5,10] [--skip-labelled]
                                         [--no-cross-check] [--split train]

SNIPS: queries from ../shared/corpus/snips/<intent>.validate.jsonl, examples drawn (seed 0)
only from <intent>.train.jsonl, models in bench/snips_intents.py. Micro slot P/R/F1 per intent,
beside the trained engines' F1 from the corpus' SOURCE.md.

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
SNIPS = ROOT.parent / "shared" / "corpus" / "snips"
# Micro slot F1 of the best engine trained on 10 and on 70 queries (SNIPS SOURCE.md).
TRAINED = {"add_to_playlist": (0.72, 0.83), "get_weather": (0.50, 0.80),
           "play_music": (0.52, 0.67), "rate_book": (0.85, 0.97),
           "search_creative_work": (0.70, 0.88), "search_screening_event": (0.58, 0.84)}


def snips(backend, k: int, limit: int, options: dict | None = None,
          split: str = "validate") -> dict[str, dict]:
    """Micro slot P/R/F1 per intent with `k` training examples (0: zero-shot)."""
    import random

    from snips_intents import INTENTS

    out = {}
    for intent, schema in INTENTS.items():
        train = [json.loads(x) for x in (SNIPS / f"{intent}.train.jsonl").read_text().splitlines()]
        drawn = random.Random(0).sample(range(len(train)), k)
        examples = [(train[i]["text"], train[i]["gold"]) for i in drawn]
        if split == "train":   # for choosing settings: train queries the examples do not hold
            rows = [r for i, r in enumerate(train) if i not in set(drawn)][-limit:]
        else:
            rows = [json.loads(x) for x in (SNIPS / f"{intent}.validate.jsonl").read_text()
                    .splitlines()][:limit]
        extractor = Extractor(schema, model=backend, examples=examples, **(options or {}))
        started = time.perf_counter()
        ledger: list[dict] = []
        results = {o.index: o for o in extractor.outcomes([r["text"] for r in rows],
                                                          ledger=ledger.append)}
        confidence = {row["index"]: row["tries"][-1].get("confidence", {}) for row in ledger}
        # what --min-confidence t would keep, from the same run: values below t become null
        by_threshold = {t: [0, 0, 0] for t in THRESHOLDS}
        for i, row in enumerate(rows):
            outcome = results[i]
            pred = outcome.data if outcome.ok else None
            for t, totals in by_threshold.items():
                kept = pred if pred is None else {
                    k: v if confidence[i].get(k, 1.0) >= t else None for k, v in pred.items()}
                for j, c in enumerate(slot_counts(kept, row["gold"])):
                    totals[j] += c
        out[intent] = {**prf(*by_threshold[0.0]), "queries": len(rows),
                       "seconds": round(time.perf_counter() - started, 1),
                       "f1_at_min_confidence": {t: round(prf(*c)["f1"], 3)
                                                for t, c in by_threshold.items()},
                       "precision_at_min_confidence": {t: round(prf(*c)["precision"], 3)
                                                       for t, c in by_threshold.items()}}
    return out


THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)


def actor_round_trip(backend) -> dict:
    """The tutorial's part 3 on simulacra: the two Actor records written as informal text
    (seed 5, as tests/test_extract.py does), then extracted back; every film found or missed."""
    from pydantic import BaseModel, Field
    from tests.test_text import ACTORS

    from simulacra.text import TextWriter

    class Actor(BaseModel):
        Actor: str = Field(description="name of an actor")
        Film: list[str] = Field(description="list of names of films they starred in")

    texts = TextWriter(backend, {"style": "informal", "minimal length": 500}, seed=5).many(ACTORS)
    extractor = Extractor(Actor, model=backend)
    out = {"texts": [], "found": 0, "films": 0}
    for row, gold in zip(texts, ACTORS, strict=True):
        got = extractor.extract(row["text"])
        stated = [f for f in gold["Film"] if f.casefold() in row["text"].casefold()]
        found = [f for f in gold["Film"] if f in got.Film]
        out["found"] += len(found)
        out["films"] += len(gold["Film"])
        out["texts"].append({"actor": got.Actor, "actor_ok": got.Actor == gold["Actor"],
                             "extracted": got.Film, "missed": [f for f in gold["Film"]
                                                               if f not in found],
                             "stated_in_text": len(stated)})
    hits = out["found"]
    predicted = sum(len(t["extracted"]) for t in out["texts"])
    out.update(prf(hits, predicted, out["films"]))
    return out


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
    parser.add_argument("--limit", type=int, default=100, help="SNIPS queries per intent")
    parser.add_argument("--k", default="0,5,10", help="SNIPS example counts to run")
    parser.add_argument("--skip-labelled", action="store_true")
    parser.add_argument("--null-penalty", type=float, default=None,
                        help="logits taken from null (default: the Extractor's)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="default: the Extractor's (0.4 with examples, else 0)")
    parser.add_argument("--no-cross-check", action="store_true",
                        help="one reading per text (the Extractor's default with examples "
                             "is two, keeping the values both state)")
    parser.add_argument("--split", default="validate", choices=("validate", "train"),
                        help="queries to measure on: validate, or train (to choose settings "
                             "without looking at validate; never the examples shown)")
    args = parser.parse_args()
    options = {"null_penalty": args.null_penalty, "min_confidence": args.min_confidence,
               "cross_check": False if args.no_cross_check else None}
    sys.path.insert(0, str(ROOT / "bench"))
    backend = LlamaCppBackend(batch=4)
    report: dict = {"snips": {}}
    for k in [int(x) for x in args.k.split(",")]:
        report["snips"][k] = snips(backend, k, args.limit, options, args.split)
        if not args.json:
            print(f"SNIPS, {k} examples per intent:")
            for intent, r in report["snips"][k].items():
                at10, at70 = TRAINED[intent]
                print(f"  {intent:>24}: P {r['precision']:.2f}  R {r['recall']:.2f}  "
                      f"F1 {r['f1']:.2f}   trained engines F1 @10 {at10:.2f} @70 {at70:.2f}  "
                      f"({r['queries']} queries, {r['seconds']} s)", flush=True)
                print(f"  {'':>24}  with --min-confidence t, F1: "
                      f"{r['f1_at_min_confidence']}  P: {r['precision_at_min_confidence']}")
    if not args.skip_labelled:
        rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
        report["labelled"] = {}
        for route in ("format-instructions", "grammar", "extractive"):
            started = time.perf_counter()
            overall, domains = run(backend, rows, route)
            report["labelled"][route] = {**overall, "by_domain": domains,
                                         "seconds": round(time.perf_counter() - started, 1)}
        if not args.json:
            print(f"labelled set: {len(rows)} texts, {len(SCHEMAS)} domains")
            for route, r in report["labelled"].items():
                print(f"{route:>20}: P {r['precision']:.2f}  R {r['recall']:.2f}  "
                      f"F1 {r['f1']:.2f}  ({r['seconds']} s)  by domain F1: {r['by_domain']}")
    report["actor"] = actor = actor_round_trip(backend)
    if not args.json:
        print(f"tutorial Actor round trip: {actor['found']} of {actor['films']} films back "
              f"(set P {actor['precision']:.2f} R {actor['recall']:.2f} F1 {actor['f1']:.2f})")
        for t in actor["texts"]:
            print(f"  {t['actor']} (name {'right' if t['actor_ok'] else 'wrong'}): extracted "
                  f"{t['extracted']}; missed {t['missed']} ({t['stated_in_text']} of 5 films "
                  "stated in the text)")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()

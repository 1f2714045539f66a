"""The round-trip benchmark: generate records, write text from each, extract them back, score.

    report = roundtrip("examples/medical_billing.py:MedicalBilling", n=20)
    report.per_model["gemma-270m"]["fields"]["patient_name"]["match_rate"]

Several models run the same records side by side (text and extraction both on each model,
unless `text_model` or `extract_model` pins one side). `score_labelled` does the extraction
half on an existing labelled set of {"text", "gold"} rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulacra.backends.registry import check_model, get_backend, is_endpoint, model_name
from simulacra.errors import GenerationError, UsageError
from simulacra.extract import Extractor
from simulacra.generate import Generator
from simulacra.schema import Schema, load_schema
from simulacra.score import compare_field, failure_reason, flatten
from simulacra.text import TextWriter

WORST_EXAMPLES = 5


@dataclass
class RoundtripReport:
    """All numbers of a run; `as_dict()` is report.json."""

    schema: str
    config: dict[str, Any]
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "config": self.config, "timings": self.timings,
                "models": self.per_model}


def score_records(schema: Schema, golds: list[dict[str, Any]], texts: list[str],
                  extracted: list[Any], grounded: list[bool] | None = None) -> dict[str, Any]:
    """Per-field and record-level scores of extracted records against their gold records."""
    fields: dict[str, dict[str, Any]] = {}
    failures: Counter = Counter()
    rows = []
    record_exact = 0
    for gold, text, result in zip(golds, texts, extracted, strict=True):
        gold_flat = flatten(gold)
        if isinstance(result, Exception):
            last = result.errors[-1] if isinstance(result, GenerationError) and result.errors else ""
            reason = "parse error" if last.startswith("parse") else (
                "validation error" if last.startswith("invalid") else "extraction error")
            failures[reason] += 1
            pred_flat: dict[str, Any] = {}
        else:
            pred_flat = flatten(schema.dump(result))
        all_match = not isinstance(result, Exception)
        mismatches = 0
        for name, gold_value in gold_flat.items():
            pred_value = pred_flat.get(name)
            scores = compare_field(pred_value, gold_value)
            slot = fields.setdefault(name, {"kind": scores["kind"], "n": 0, "exact": 0, "match": 0,
                                            "set_f1": 0.0, "missing": 0, "wrong value": 0})
            slot["n"] += 1
            slot["exact"] += scores["exact"]
            slot["match"] += scores["match"]
            slot["set_f1"] += scores.get("set_f1", float(scores["match"]))
            reason = failure_reason(pred_value, gold_value, scores)
            if reason and not isinstance(result, Exception):
                slot[reason] += 1
                failures[reason] += 1
            if not scores["match"]:
                all_match = False
                mismatches += 1
        record_exact += all_match
        rows.append({"text": text, "gold": gold,
                     "extracted": None if isinstance(result, Exception) else schema.dump(result),
                     "error": str(result) if isinstance(result, Exception) else None,
                     "mismatches": mismatches if not isinstance(result, Exception) else len(gold_flat)})
    for slot in fields.values():
        n = slot["n"] or 1
        slot["exact_rate"] = round(slot["exact"] / n, 3)
        slot["match_rate"] = round(slot["match"] / n, 3)
        slot["set_f1"] = round(slot["set_f1"] / n, 3)
    worst = sorted(rows, key=lambda r: -r["mismatches"])[:WORST_EXAMPLES]
    total = len(golds) or 1
    return {
        "records": len(golds),
        "fields": fields,
        "record_exact_rate": round(record_exact / total, 3),
        "grounding_rate": round(sum(grounded) / total, 3) if grounded is not None else None,
        "failures": dict(failures),
        "worst": worst,
    }


def roundtrip(schema: Any, n: int = 20, *, models: list[Any] | None = None,
              text_model: Any = None, extract_model: Any = None, style: str | None = None,
              min_length: int = 0, seed: int = 0, examples: list[Any] = (),
              subject: str = "", extra: str = "", endpoint: dict[str, Any] | None = None,
              log: Callable[[str], None] = lambda line: None) -> RoundtripReport:
    """Generate `n` records once, then for each model write texts, extract, and score.
    `endpoint` holds options for openai/ models (base_url, api_key_env); `log` hears one
    line as each stage starts (a run of several models takes minutes)."""
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    loaded = load_schema(schema)
    models = list(models or [None])
    for model in [*models, text_model, extract_model]:
        check_model(model)   # every name before the first model's work
    backends: dict[str, Any] = {}

    def backend(model: Any) -> Any:
        name = model_name(model)
        if name not in backends:
            backends[name] = get_backend(model, **(endpoint or {}) if is_endpoint(name) else {})
        return backends[name]

    report = RoundtripReport(schema=loaded.name, config={
        "n": n, "models": [model_name(m) for m in models], "text_model": model_name(text_model)
        if text_model else None, "extract_model": model_name(extract_model) if extract_model
        else None, "style": style, "min_length": min_length, "seed": seed})
    started = time.perf_counter()
    log(f"generating {n} records on {model_name(models[0])}")
    generator = Generator(loaded, model=backend(models[0]), examples=examples, subject=subject,
                          extra=extra, seed=seed)
    golds = [loaded.dump(r) for r in generator.generate(n)]
    report.timings["generate_s"] = round(time.perf_counter() - started, 2)
    preferences = {k: v for k, v in (("style", style), ("min_length", min_length)) if v} or None
    for model in models:
        name = model_name(model)
        t0 = time.perf_counter()
        log(f"{name}: writing {n} texts, then extracting them")
        writer = TextWriter(backend(text_model or model), preferences, seed=seed)
        written = writer.write_many(golds)
        t1 = time.perf_counter()
        extractor = Extractor(loaded, model=backend(extract_model or model), seed=seed)
        extracted = extractor.extract_batch([w.text for w in written])
        t2 = time.perf_counter()
        scores = score_records(loaded, golds, [w.text for w in written], extracted,
                               [w.grounded for w in written])
        scores["timings"] = {"text_s": round(t1 - t0, 2), "extract_s": round(t2 - t1, 2)}
        report.per_model[name] = scores
    report.timings["total_s"] = round(time.perf_counter() - started, 2)
    return report


def score_labelled(schema: Any, rows: list[dict[str, Any]], *, model: Any = None,
                   seed: int = 0) -> RoundtripReport:
    """Extraction only, on {"text": ..., "gold": {...}} rows."""
    loaded = load_schema(schema)
    started = time.perf_counter()
    extractor = Extractor(loaded, model=model, seed=seed)
    texts = [r["text"] for r in rows]
    extracted = extractor.extract_batch(texts)
    report = RoundtripReport(schema=loaded.name, config={"n": len(rows), "models": [
        model_name(model)], "seed": seed})
    report.per_model[model_name(model)] = score_records(loaded, [r["gold"] for r in rows], texts,
                                                         extracted)
    report.timings["total_s"] = round(time.perf_counter() - started, 2)
    return report

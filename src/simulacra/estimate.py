"""What a run will take, stated before it starts: tokens, time and, with prices, cost.

Tokens per record come from the examples (or, without examples, from the schema's fields),
counted the way Gemma's tokenizer splits them: one token per digit, about 3.5 characters per
token for the rest. Time comes from throughput measured on this project's reference machine
(2 cores, see docs/performance.md): the embedded engine turns out ~240 generated tokens/s
with 32 sequences in flight (275 on MedicalBilling, 200 on a customer profile with longer
strings, measured 2026-12-01 with the diversity steer on); an endpoint is taken at 40
tokens/s per concurrent request. The progress line compares the actual rate with this one
(cli/progress.py). Expect
the estimate within a factor of 2; the closing summary prints the actual figures beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulacra.backends.base import Backend
from simulacra.plan import Plan
from simulacra.schema.grammar import SPACED, dumps, separators_for

EMBEDDED_TOKENS_PER_S = 240.0
ENDPOINT_TOKENS_PER_S = 40.0
EXPECTED_ATTEMPTS = 1.15  # retries for rejected records, as measured on MedicalBilling


def count_tokens(text: str) -> int:
    digits = sum(ch.isdigit() for ch in text)
    return digits + round((len(text) - digits) / 3.5)


@dataclass
class Estimate:
    records: int
    tokens_out: int
    tokens_in: int
    seconds: float
    cost: float | None = None

    def line(self) -> str:
        cost = f" · ~${self.cost:.4f}" if self.cost is not None else ""
        return (f"estimate: {self.records} records · ~{self.tokens_out:,} generated + "
                f"~{self.tokens_in:,} prompt tokens · ~{self.seconds:.0f} s{cost}")


def typical_record(plan: Plan, separators: tuple[str, str] = SPACED) -> str:
    """The longest example (or a record of placeholders) in the layout records are written."""
    if plan.examples:
        return max((dumps(e, separators) for e in plan.examples), key=len)
    return dumps({f.name: _placeholder(f.type) for f in plan.schema.fields}, separators)


def _placeholder(kind: str) -> Any:
    if kind in ("integer", "number"):
        return 123456.75 if kind == "number" else 123456
    if kind.startswith("list"):
        return ["a typical item", "another item"]
    return "a typical value here"


def estimate(plan: Plan, backend: Backend, n: int, *, price_in: float | None = None,
             price_out: float | None = None) -> Estimate:
    """`price_in`/`price_out`: the endpoint's prices per million prompt/generated tokens."""
    layout = separators_for(plan.schema.decoding_schema(), backend.capabilities.grammar)
    per_record = count_tokens(typical_record(plan, layout))
    prompt = count_tokens(plan.prompt(separators=layout))
    tokens_out = round(n * per_record * EXPECTED_ATTEMPTS)
    if backend.capabilities.grammar:  # embedded: the prompt is evaluated once per batch
        tokens_in = round(prompt * max(1, n / max(1, backend.capabilities.batch)))
        seconds = tokens_out / EMBEDDED_TOKENS_PER_S
    else:
        tokens_in = round(prompt * n * EXPECTED_ATTEMPTS)
        seconds = tokens_out / (ENDPOINT_TOKENS_PER_S * max(1, backend.capabilities.batch))
    cost = None
    if price_in is not None or price_out is not None:
        cost = (tokens_in * (price_in or 0) + tokens_out * (price_out or 0)) / 1e6
    return Estimate(n, tokens_out, tokens_in, seconds, cost)

"""Schedule requests, validate replies, retry what fails, and count everything.

Every requested record index gets up to `max_attempts` tries. A try is rejected when the reply
was cut by the token budget, is not JSON, fails the schema (types, bounds, pydantic
validators) or duplicates a record already made; the rejection reason is counted and, for
chat backends, fed back on the next try (instructor's reask). Records are yielded as soon as
they are valid, so sinks can write them at once.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simulacra.backends.base import Backend, Completion, Request
from simulacra.checks.gate import RecordGate
from simulacra.errors import UsageError
from simulacra.estimate import count_tokens, typical_record
from simulacra.parse import ReplyParseError, parse_reply, parse_value
from simulacra.plan import Plan
from simulacra.schema import RecordInvalid, Schema
from simulacra.schema.size import distinct_instances, longest_tokens, shortest_tokens


@dataclass
class Outcome:
    """One valid record with its provenance."""

    index: int
    record: Any              # pydantic instance, or dict for a JSON Schema
    data: dict[str, Any]     # JSON-ready
    attempts: int
    seed: int


@dataclass
class RunStats:
    """What a run did; the CLI prints it as the closing summary."""

    requested: int = 0
    valid: int = 0
    attempts: int = 0
    rejected: Counter = field(default_factory=Counter)
    failed: list[tuple[int, str]] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    routes: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    gate: Any = None  # the run's RecordGate: closest leak distance, kept records

    @property
    def closest_leak(self) -> float:
        """Highest similarity (0-100) of any kept record to a few-shot example or private row."""
        return self.gate.closest_leak if self.gate is not None else 0.0

    @property
    def records_per_second(self) -> float:
        return self.valid / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested, "valid": self.valid, "failed": len(self.failed),
            "attempts": self.attempts, "rejected": dict(self.rejected),
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 3),
            "routes": dict(self.routes),
            "closest_leak_similarity": round(self.closest_leak, 1),
        }


def derive_seed(seed: int, index: int, attempt: int) -> int:
    """A stable per-(record, attempt) seed, so a rerun with the same seed makes the same records."""
    digest = hashlib.blake2b(f"{seed}:{index}:{attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


MAX_REPLY_TOKENS = 4096


def decoding_schema_for(schema: Schema, n: int) -> dict[str, Any] | bool:
    """The decoding schema for a run of `n` records. Objects are closed while decoding (the
    small model otherwise adds fields of its own), unless that leaves too few distinct records
    to choose `n` from (the model keeps its favourite) and the schema itself leaves them open.
    A schema that allows fewer than `n` distinct records at all is refused before anything
    runs."""
    decoding = schema.decoding_schema()
    if distinct_instances(decoding) >= max(2 * n, n + 10):   # room to pick from, not just n
        return decoding
    decoding = schema.decoding_schema(close_objects=False)
    possible = distinct_instances(decoding)
    if possible < n:
        raise UsageError(f"{schema.name} allows only {possible} distinct record"
                         f"{'s' if possible != 1 else ''}; ask for at most {possible} or "
                         "loosen the schema")
    return decoding


def token_budgets(plan: Plan, grammar: bool, decoding: dict[str, Any] | bool | None = None
                  ) -> tuple[int, int]:
    """(hard limit, where to start closing) for one reply, in tokens.

    The hard limit is the longest record the bounded decoding schema allows (a reply that
    reaches it was looping). A record usually needs far less: a few times the examples' size,
    or twice the schema's shortest complete instance. A constrained decoder gets the whole
    hard limit and is steered to close from the usual size on, so a record the schema allows
    is never cut; an endpoint, which cannot be steered, is cut at the usual size, so a
    looping reply costs little.
    """
    decoding = plan.schema.decoding_schema() if decoding is None else decoding
    longest = min(MAX_REPLY_TOKENS, 16 + longest_tokens(decoding))
    usual = max(64, 3 * count_tokens(typical_record(plan)), 2 * shortest_tokens(decoding) + 32)
    if grammar:
        return longest, min(usual, longest)
    return min(longest, usual), min(usual, longest)


Ledger = Callable[[dict[str, Any]], None]


def run_records(backend: Backend, plan: Plan, n: int, *, seed: int = 0,
                temperature: float = 0.8, max_attempts: int = 4,
                stats: RunStats | None = None, ledger: Ledger | None = None,
                done: Iterable[int] = (), prior: Iterable[dict[str, Any]] = (),
                start: int = 0) -> Iterator[Outcome]:
    """Yield up to `n` valid, distinct records (indices `start` to `start + n - 1`); failures
    are counted in `stats.failed`. A shard of a larger run passes its first index as `start`,
    so its records get the seeds and sequence values they have in the whole run.

    With `ledger`, every requested record gets exactly one ledger row when it is settled: its
    index, sampler values, seeds, attempts (with the rejection reason and raw model text of
    each failed one), outcome, tokens and seconds. Kept records plus failed rows add up to n.

    A resumed run passes the indices already `done` (skipped) and their records as `prior`
    (so nothing new duplicates them); the other indices get the seeds they always had.
    """
    stats = stats if stats is not None else RunStats()
    indices = range(start, start + n)
    skip = set(done) & set(indices)
    stats.requested += n - len(skip)
    schema = plan.schema
    decoding = decoding_schema_for(schema, n)
    budget, close_after = token_budgets(plan, backend.capabilities.grammar, decoding)
    gate = RecordGate(plan.rules, examples=plan.examples, private_rows=plan.private_rows,
                      near_threshold=plan.near_threshold)
    stats.gate = gate
    for record in prior:
        gate.admit(record)
    pending: deque[tuple[int, int, str]] = deque((i, 1, "") for i in indices if i not in skip)
    tries: dict[int, list[dict[str, Any]]] = {}
    batch_size = max(1, backend.capabilities.batch)
    try:
        while pending:
            batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
            # One prompt per batch (examples rotated by the batch's first seed): the batch
            # shares it through the KV cache, and the next batch sees another order.
            first_index, first_attempt, _ = batch[0]
            prompt = plan.prompt(random.Random(derive_seed(seed, first_index, first_attempt)))
            requests, fixed_values = [], []
            for index, attempt, feedback in batch:
                s = derive_seed(seed, index, attempt)
                fixed = plan.sample(random.Random(s), index)
                fixed_values.append(fixed)
                requests.append(Request(
                    prompt=prompt, json_schema=with_fixed(decoding, fixed) if fixed else decoding,
                    max_tokens=budget, close_after=close_after,
                    temperature=retry_temperature(temperature, attempt, feedback),
                    seed=s, stop=("\n",),
                    feedback=feedback,
                ))
            completions = backend.complete(requests)
            for (index, attempt, _), request, completion, fixed in zip(
                    batch, requests, completions, fixed_values, strict=True):
                stats.attempts += 1
                stats.tokens_in += completion.tokens_in
                stats.tokens_out += completion.tokens_out
                stats.routes[completion.route or backend.name] += 1
                outcome, reason = _accept(plan, completion, gate)
                if ledger is not None:
                    tries.setdefault(index, []).append({
                        "attempt": attempt, "seed": request.seed, "sampled": fixed,
                        "route": completion.route, "tokens": completion.tokens_out,
                        "seconds": round(completion.seconds, 3), "rejected": reason or None,
                        "text": completion.text if reason else None})
                if outcome is not None:
                    stats.valid += 1
                    outcome.index, outcome.attempts, outcome.seed = index, attempt, request.seed
                    if ledger is not None:
                        ledger(_ledger_row(index, "ok", tries.pop(index, [])))
                    yield outcome
                    continue
                kind = reason.split(":", 1)[0]
                stats.rejected[kind] += 1
                if attempt < max_attempts:
                    pending.appendleft((index, attempt + 1, reason))
                else:
                    stats.failed.append((index, reason))
                    if ledger is not None:
                        ledger(_ledger_row(index, f"failed: {kind}", tries.pop(index, [])))
    finally:
        stats.seconds = time.perf_counter() - stats.started


def retry_temperature(temperature: float, attempt: int, feedback: str) -> float:
    """A retry after a duplicate or a copy of an example samples hotter: where the model has
    one strong favourite, another try at the same temperature mostly makes the same record."""
    if feedback.startswith(("duplicate", "near-duplicate", "leak")):
        return min(2.0, temperature + 0.3 * (attempt - 1))
    return temperature


def _ledger_row(index: int, outcome: str, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    last = attempts[-1] if attempts else {}
    return {"index": index, "outcome": outcome, "attempts": len(attempts),
            "seed": last.get("seed"), "sampled": last.get("sampled") or {},
            "tokens": sum(a["tokens"] for a in attempts),
            "seconds": round(sum(a["seconds"] for a in attempts), 3),
            "tries": attempts}


def with_fixed(decoding: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The decoding schema with sampled fields pinned: the decoder forces their values."""
    properties = dict(decoding["properties"])
    for name, value in fixed.items():
        properties[name] = {"const": value}
    return {**decoding, "properties": properties}


def _accept(plan: Plan, completion: Completion, gate: RecordGate) -> tuple[Outcome | None, str]:
    if completion.finish_reason == "length":
        return None, "truncated: the reply hit the token budget before the record closed"
    if completion.finish_reason == "error":
        return None, f"backend: {completion.text}"
    if completion.finish_reason == "repetition":
        return None, "repetition: the reply looped (a token cycle repeated), so it was stopped"
    try:
        data = parse_reply(completion.text) if plan.schema.is_object else parse_value(
            completion.text)
    except ReplyParseError as exc:
        return None, f"parse: {exc}"
    except RecursionError:
        return None, "parse: the reply is nested too deeply to read"
    try:
        record = plan.schema.validate(data)
    except RecordInvalid as exc:
        return None, "invalid: " + "; ".join(exc.errors[:3])
    except RecursionError:   # a recursive schema, nested past what a validator can walk
        return None, "invalid: the record is nested too deeply to validate"
    dumped = plan.schema.dump(record)
    reason = gate.reject_reason(dumped)
    if reason:
        return None, reason
    gate.admit(dumped)
    return Outcome(index=-1, record=record, data=dumped, attempts=0, seed=0), ""
